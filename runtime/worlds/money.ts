/** Money as a fixed 2-decimal string, the form tasks require in answers ("12.50"). */
export const money = (x: number): string => (Math.round(x * 100) / 100).toFixed(2);
/** Rounds to cents so state never carries float noise into its hash. */
export const cents = (x: number): number => Math.round(x * 100) / 100;
