import type { Rng } from '../engine/rng.ts';
import { CITIES, FIRST, LAST } from '../worlds/names.ts';

/*
 * The vocabulary synthesize-calls draws single-turn function-calling conversations from: everyday functions
 * outside the built-in worlds, so a model fine-tuned on the worlds still learns to read the offered tool list —
 * copy the given name, give typed arguments (numbers as numbers), leave unmentioned optional ones out, make several
 * calls when asked for several things, and answer in words when no offered tool fits. Written for this project.
 *
 * A concept's asks are sentence templates: {key} is a parameter's value as words, [ … ] a segment said only when
 * every {key} inside it is given (how optional parameters get mentioned or not).
 */

export type ParamType = 'integer' | 'number' | 'string' | 'boolean' | 'array';

export interface ParamDef {
  key: string;
  /** Name variants; one is drawn per conversation (then styled snake or camel like the function). */
  names: string[];
  type: ParamType;
  items?: 'string' | 'integer';
  enum?: string[];
  description: string;
  optional?: boolean;
  value(r: Rng): unknown;
  /** The value as words in the request (default: as written). */
  words?(v: unknown): string;
}

export interface Concept {
  /** Name parts: [verb, noun words]; styled per conversation (calculate_triangle_area, calculateTriangleArea, geometry.triangle_area). */
  verbs: string[];
  nouns: string[];
  module: string;
  /** Lower-case verb phrase: "compute the area of a triangle" (descriptions and the no-tool answers use it). */
  does: string;
  asks: string[];
  params: ParamDef[];
}

const int = (lo: number, hi: number) => (r: Rng) => r.int(lo, hi);
const money = (lo: number, hi: number) => (r: Rng) => r.int(lo * 100, hi * 100) / 100;
const oneOf = <T>(xs: readonly T[]) => (r: Rng) => r.pick(xs);
const listOf = (xs: readonly string[], lo: number, hi: number) => (r: Rng) => r.sample(xs, r.int(lo, hi));
const yes = () => true;
/** "a, b and c" */
export const andList = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);
const listWords = (v: unknown) => andList((v as unknown[]).map(String));
export const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

const WORLD_CITIES = ['Paris', 'Tokyo', 'Lima', 'Oslo', 'Cairo', 'Toronto', 'Madrid', 'Sydney', 'Nairobi', 'Seoul', 'Dublin', 'Mumbai'];
const CITY_NAMES = [...WORLD_CITIES, ...CITIES.map(cap)];
const LANGS = ['French', 'German', 'Spanish', 'Japanese', 'Italian', 'Korean', 'Portuguese'];
const TICKERS = ['AAPL', 'MSFT', 'TSLA', 'NVDA', 'AMZN', 'GOOG', 'META', 'IBM'];
const PEOPLE = FIRST.map((f, i) => `${cap(f)} ${cap(LAST[i % LAST.length])}`);
const ARTISTS = ['Adele', 'Coldplay', 'Miles Davis', 'Shakira', 'Radiohead', 'Bach', 'Nina Simone'];
const DISHES = ['lasagna', 'pad thai', 'risotto', 'banana bread', 'falafel', 'ramen', 'paella'];
const INGREDIENTS = ['tomato', 'basil', 'garlic', 'rice', 'chickpeas', 'lemon', 'spinach', 'tofu', 'mushrooms'];
const TEAMS = ['Lakers', 'Celtics', 'Arsenal', 'Real Madrid', 'Yankees', 'Bulls', 'Chelsea'];
const ELEMENTS = ['carbon', 'oxygen', 'iron', 'gold', 'sodium', 'helium', 'copper'];
const MONTHS = ['January', 'March', 'May', 'July', 'September', 'November'];
const date = (r: Rng) => `2026-${String(r.int(1, 12)).padStart(2, '0')}-${String(r.int(1, 28)).padStart(2, '0')}`;

export const CONCEPTS: Concept[] = [
  { verbs: ['calculate', 'compute', 'get'], nouns: ['triangle', 'area'], module: 'geometry', does: 'compute the area of a triangle',
    asks: ['What is the area of a triangle with base {base} and height {height}[ in {unit}]?', 'Find the area of a triangle whose base is {base} and height is {height}[, in {unit}].'],
    params: [
      { key: 'base', names: ['base', 'base_length'], type: 'number', description: 'length of the base', value: int(2, 40) },
      { key: 'height', names: ['height', 'altitude'], type: 'number', description: 'height of the triangle', value: int(2, 40) },
      { key: 'unit', names: ['unit', 'units'], type: 'string', description: 'unit of the lengths', optional: true, value: oneOf(['cm', 'm', 'inches', 'feet']) },
    ] },
  { verbs: ['calculate', 'compute'], nouns: ['circle', 'circumference'], module: 'geometry', does: 'compute the circumference of a circle',
    asks: ['How long is the circumference of a circle with radius {radius}?', 'Calculate the circumference of a circle of radius {radius}[ in {unit}].'],
    params: [
      { key: 'radius', names: ['radius', 'r'], type: 'number', description: 'radius of the circle', value: int(1, 50) },
      { key: 'unit', names: ['unit'], type: 'string', description: 'length unit', optional: true, value: oneOf(['cm', 'm', 'km']) },
    ] },
  { verbs: ['calculate', 'get'], nouns: ['factorial'], module: 'math', does: 'compute the factorial of a number',
    asks: ['What is the factorial of {n}?', 'Compute {n} factorial.'],
    params: [{ key: 'n', names: ['number', 'n', 'value'], type: 'integer', description: 'a non-negative integer', value: int(2, 20) }] },
  { verbs: ['find', 'compute'], nouns: ['gcd'], module: 'math', does: 'find the greatest common divisor of two integers',
    asks: ['What is the greatest common divisor of {a} and {b}?', 'Find the GCD of {a} and {b}.'],
    params: [
      { key: 'a', names: ['a', 'first', 'num1'], type: 'integer', description: 'first integer', value: int(6, 400) },
      { key: 'b', names: ['b', 'second', 'num2'], type: 'integer', description: 'second integer', value: int(6, 400) },
    ] },
  { verbs: ['solve'], nouns: ['quadratic', 'equation'], module: 'algebra', does: 'solve a quadratic equation',
    asks: ['Solve the quadratic equation with a = {a}, b = {b} and c = {c}.', 'Find the roots of {a}x^2 + {b}x + {c} = 0.'],
    params: [
      { key: 'a', names: ['a'], type: 'integer', description: 'coefficient of x^2', value: int(1, 9) },
      { key: 'b', names: ['b'], type: 'integer', description: 'coefficient of x', value: int(-20, 20) },
      { key: 'c', names: ['c'], type: 'integer', description: 'constant term', value: int(-30, 30) },
    ] },
  { verbs: ['calculate', 'compute'], nouns: ['compound', 'interest'], module: 'finance', does: 'compute compound interest on a deposit',
    asks: ['How much interest does {principal} dollars earn at {rate} percent a year over {years} years[, compounded {times} times a year]?', 'Compute the compound interest on a principal of {principal} at an annual rate of {rate}% for {years} years[ with {times} compounding periods per year].'],
    params: [
      { key: 'principal', names: ['principal', 'amount'], type: 'number', description: 'initial deposit', value: int(500, 50000) },
      { key: 'rate', names: ['rate', 'annual_rate', 'interest_rate'], type: 'number', description: 'annual interest rate in percent', value: int(1, 12) },
      { key: 'years', names: ['years', 'time', 'duration'], type: 'integer', description: 'number of years', value: int(1, 30) },
      { key: 'times', names: ['compounds_per_year', 'n'], type: 'integer', description: 'compounding periods per year', optional: true, value: oneOf([1, 4, 12]) },
    ] },
  { verbs: ['calculate', 'get'], nouns: ['loan', 'payment'], module: 'finance', does: 'compute the monthly payment of a loan',
    asks: ['What is the monthly payment on a loan of {amount} at {rate}% interest over {months} months?', 'Calculate my monthly payment for borrowing {amount} for {months} months at an annual rate of {rate} percent.'],
    params: [
      { key: 'amount', names: ['loan_amount', 'principal'], type: 'number', description: 'amount borrowed', value: int(1000, 90000) },
      { key: 'rate', names: ['interest_rate', 'rate'], type: 'number', description: 'annual interest rate in percent', value: int(2, 15) },
      { key: 'months', names: ['months', 'term_months'], type: 'integer', description: 'loan term in months', value: oneOf([12, 24, 36, 60]) },
    ] },
  { verbs: ['get', 'fetch'], nouns: ['stock', 'price'], module: 'market', does: 'look up the price of a stock',
    asks: ['What is the current price of {symbol} stock?', 'Get me the latest share price for {symbol}[ on {exchange}].'],
    params: [
      { key: 'symbol', names: ['symbol', 'ticker'], type: 'string', description: 'ticker symbol', value: oneOf(TICKERS) },
      { key: 'exchange', names: ['exchange', 'market'], type: 'string', description: 'stock exchange', optional: true, value: oneOf(['NASDAQ', 'NYSE']) },
    ] },
  { verbs: ['convert'], nouns: ['currency'], module: 'finance', does: 'convert an amount between currencies',
    asks: ['Convert {amount} {from} to {to}.', 'How much is {amount} {from} in {to}?'],
    params: [
      { key: 'amount', names: ['amount', 'value'], type: 'number', description: 'amount to convert', value: money(5, 5000) },
      { key: 'from', names: ['from_currency', 'source'], type: 'string', description: 'currency code to convert from', value: oneOf(['USD', 'EUR', 'JPY', 'GBP']) },
      { key: 'to', names: ['to_currency', 'target'], type: 'string', description: 'currency code to convert to', value: oneOf(['CAD', 'CHF', 'INR', 'MXN']) },
    ] },
  { verbs: ['get'], nouns: ['weather'], module: 'weather', does: 'report the current weather',
    asks: ['What is the weather like in {city}[ in {unit}]?', 'Tell me the current weather in {city}[, using {unit}].'],
    params: [
      { key: 'city', names: ['city', 'location'], type: 'string', description: 'city name', value: oneOf(CITY_NAMES) },
      { key: 'unit', names: ['unit', 'units'], type: 'string', enum: ['celsius', 'fahrenheit'], description: 'temperature unit', optional: true, value: oneOf(['celsius', 'fahrenheit']) },
    ] },
  { verbs: ['get'], nouns: ['forecast'], module: 'weather', does: 'give a weather forecast for the coming days',
    asks: ['Give me the {days}-day forecast for {city}.', 'What will the weather be in {city} over the next {days} days?'],
    params: [
      { key: 'city', names: ['location', 'city'], type: 'string', description: 'city name', value: oneOf(CITY_NAMES) },
      { key: 'days', names: ['days', 'num_days'], type: 'integer', description: 'how many days ahead', value: int(2, 10) },
    ] },
  { verbs: ['search', 'find'], nouns: ['flights'], module: 'travel', does: 'search for flights between two cities',
    asks: ['Find flights from {origin} to {destination} on {date}[ for {passengers} passengers].', 'Are there flights from {origin} to {destination} on {date}?'],
    params: [
      { key: 'origin', names: ['origin', 'from_city'], type: 'string', description: 'departure city', value: oneOf(WORLD_CITIES) },
      { key: 'destination', names: ['destination', 'to_city'], type: 'string', description: 'arrival city', value: oneOf(CITY_NAMES) },
      { key: 'date', names: ['date', 'departure_date'], type: 'string', description: 'date as YYYY-MM-DD', value: date },
      { key: 'passengers', names: ['passengers', 'adults'], type: 'integer', description: 'number of travellers', optional: true, value: int(2, 6) },
    ] },
  { verbs: ['book', 'reserve'], nouns: ['hotel'], module: 'travel', does: 'book a hotel room',
    asks: ['Book a hotel in {city} from {checkin} for {nights} nights.', 'Reserve a room in {city} starting {checkin}, {nights} nights[, {rooms} rooms].'],
    params: [
      { key: 'city', names: ['city', 'location'], type: 'string', description: 'city of the hotel', value: oneOf(CITY_NAMES) },
      { key: 'checkin', names: ['check_in', 'start_date'], type: 'string', description: 'check-in date as YYYY-MM-DD', value: date },
      { key: 'nights', names: ['nights', 'stay_length'], type: 'integer', description: 'number of nights', value: int(1, 14) },
      { key: 'rooms', names: ['rooms', 'room_count'], type: 'integer', description: 'number of rooms', optional: true, value: int(2, 4) },
    ] },
  { verbs: ['translate'], nouns: ['text'], module: 'language', does: 'translate text into another language',
    asks: ['Translate "{text}" into {lang}.', 'How do you say "{text}" in {lang}?'],
    params: [
      { key: 'text', names: ['text', 'sentence'], type: 'string', description: 'text to translate', value: oneOf(['good morning', 'where is the station', 'thank you very much', 'see you tomorrow', 'how much does it cost']) },
      { key: 'lang', names: ['target_language', 'language'], type: 'string', description: 'language to translate into', value: oneOf(LANGS) },
    ] },
  { verbs: ['convert'], nouns: ['temperature'], module: 'units', does: 'convert a temperature between scales',
    asks: ['Convert {value} degrees {from} to {to}.', 'What is {value} degrees {from} in {to}?'],
    params: [
      { key: 'value', names: ['value', 'temperature'], type: 'number', description: 'temperature to convert', value: int(-30, 200) },
      { key: 'from', names: ['from_scale', 'from_unit'], type: 'string', enum: ['celsius', 'fahrenheit', 'kelvin'], description: 'scale of the value', value: oneOf(['celsius', 'fahrenheit']) },
      { key: 'to', names: ['to_scale', 'to_unit'], type: 'string', enum: ['celsius', 'fahrenheit', 'kelvin'], description: 'scale to convert to', value: oneOf(['kelvin']) },
    ] },
  { verbs: ['convert'], nouns: ['distance'], module: 'units', does: 'convert a distance between units',
    asks: ['How many {to} are {value} {from}?', 'Convert {value} {from} into {to}.'],
    params: [
      { key: 'value', names: ['distance', 'value'], type: 'number', description: 'distance to convert', value: int(1, 900) },
      { key: 'from', names: ['from_unit'], type: 'string', description: 'unit of the distance', value: oneOf(['miles', 'kilometers']) },
      { key: 'to', names: ['to_unit'], type: 'string', description: 'unit to convert to', value: oneOf(['meters', 'feet', 'yards']) },
    ] },
  { verbs: ['find', 'search'], nouns: ['recipes'], module: 'cooking', does: 'find recipes that use given ingredients',
    asks: ['Find me a recipe with {ingredients}[ that takes under {minutes} minutes].', 'What can I cook using {ingredients}?'],
    params: [
      { key: 'ingredients', names: ['ingredients', 'items'], type: 'array', items: 'string', description: 'ingredients to use', value: listOf(INGREDIENTS, 2, 3), words: listWords },
      { key: 'minutes', names: ['max_minutes', 'max_time'], type: 'integer', description: 'longest cooking time in minutes', optional: true, value: oneOf([20, 30, 45]) },
    ] },
  { verbs: ['get'], nouns: ['nutrition', 'facts'], module: 'health', does: 'give the nutrition facts of a dish',
    asks: ['How many calories are in a serving of {dish}?', 'Show the nutrition facts for {dish}[, {servings} servings].'],
    params: [
      { key: 'dish', names: ['dish', 'food'], type: 'string', description: 'name of the dish', value: oneOf(DISHES) },
      { key: 'servings', names: ['servings', 'portions'], type: 'integer', description: 'number of servings', optional: true, value: int(2, 6) },
    ] },
  { verbs: ['calculate', 'compute'], nouns: ['bmi'], module: 'health', does: 'compute a body mass index',
    asks: ['What is the BMI of someone who weighs {weight} kg and is {height} cm tall?', 'Calculate BMI for weight {weight} kg and height {height} cm.'],
    params: [
      { key: 'weight', names: ['weight_kg', 'weight'], type: 'number', description: 'body weight in kilograms', value: int(45, 130) },
      { key: 'height', names: ['height_cm', 'height'], type: 'number', description: 'height in centimeters', value: int(150, 205) },
    ] },
  { verbs: ['play', 'queue'], nouns: ['song'], module: 'music', does: 'play music by an artist',
    asks: ['Play some {artist}[ for {minutes} minutes].', 'Put on music by {artist}[, shuffle {shuffle}].'],
    params: [
      { key: 'artist', names: ['artist', 'performer'], type: 'string', description: 'artist to play', value: oneOf(ARTISTS) },
      { key: 'minutes', names: ['duration', 'minutes'], type: 'integer', description: 'how long to play, in minutes', optional: true, value: int(10, 90) },
      { key: 'shuffle', names: ['shuffle'], type: 'boolean', description: 'play in random order', optional: true, value: yes, words: () => 'on' },
    ] },
  { verbs: ['get'], nouns: ['team', 'standings'], module: 'sports', does: 'look up a sports team\'s standing',
    asks: ['How are the {team} doing this season?', 'Show the {team} standings[ for the {season} season].'],
    params: [
      { key: 'team', names: ['team', 'team_name'], type: 'string', description: 'team name', value: oneOf(TEAMS) },
      { key: 'season', names: ['season', 'year'], type: 'integer', description: 'season year', optional: true, value: int(2015, 2026) },
    ] },
  { verbs: ['send'], nouns: ['email'], module: 'mail', does: 'send an email',
    asks: ['Email {to} with the subject "{subject}".', 'Send an email to {to} titled "{subject}"[ and cc {cc}].'],
    params: [
      { key: 'to', names: ['to', 'recipient'], type: 'string', description: 'recipient address', value: (r) => `${r.pick(FIRST)}@example.com` },
      { key: 'subject', names: ['subject', 'title'], type: 'string', description: 'subject line', value: oneOf(['weekly report', 'lunch on friday', 'invoice 42', 'meeting notes']) },
      { key: 'cc', names: ['cc'], type: 'string', description: 'address to copy', optional: true, value: (r) => `${r.pick(FIRST)}@example.org` },
    ] },
  { verbs: ['create', 'schedule'], nouns: ['event'], module: 'calendar', does: 'add an event to the calendar',
    asks: ['Schedule "{title}" on {date} at {time}[ for {minutes} minutes].', 'Add an event called "{title}" to my calendar on {date} at {time}.'],
    params: [
      { key: 'title', names: ['title', 'name'], type: 'string', description: 'event title', value: oneOf(['dentist', 'team sync', 'yoga', 'parent meeting', 'code review']) },
      { key: 'date', names: ['date'], type: 'string', description: 'date as YYYY-MM-DD', value: date },
      { key: 'time', names: ['time', 'start_time'], type: 'string', description: 'start time as HH:MM', value: (r) => `${String(r.int(8, 18)).padStart(2, '0')}:${r.pick(['00', '30'])}` },
      { key: 'minutes', names: ['duration_minutes', 'length'], type: 'integer', description: 'length in minutes', optional: true, value: oneOf([30, 45, 60, 90]) },
    ] },
  { verbs: ['set'], nouns: ['reminder'], module: 'assistant', does: 'set a reminder',
    asks: ['Remind me to {task} in {minutes} minutes.', 'Set a reminder in {minutes} minutes to {task}.'],
    params: [
      { key: 'task', names: ['message', 'task'], type: 'string', description: 'what to be reminded of', value: oneOf(['call mom', 'water the plants', 'take a break', 'check the oven']) },
      { key: 'minutes', names: ['minutes', 'delay_minutes'], type: 'integer', description: 'minutes from now', value: int(5, 120) },
    ] },
  { verbs: ['get', 'lookup'], nouns: ['element', 'properties'], module: 'chemistry', does: 'look up a chemical element',
    asks: ['What is the atomic mass of {element}?', 'Look up the properties of {element}.'],
    params: [{ key: 'element', names: ['element', 'name'], type: 'string', description: 'element name', value: oneOf(ELEMENTS) }] },
  { verbs: ['calculate', 'compute'], nouns: ['kinetic', 'energy'], module: 'physics', does: 'compute kinetic energy',
    asks: ['What is the kinetic energy of a {mass} kg object moving at {velocity} m/s?', 'Compute the kinetic energy for mass {mass} kg and speed {velocity} m/s.'],
    params: [
      { key: 'mass', names: ['mass', 'mass_kg'], type: 'number', description: 'mass in kilograms', value: int(1, 500) },
      { key: 'velocity', names: ['velocity', 'speed'], type: 'number', description: 'speed in m/s', value: int(1, 90) },
    ] },
  { verbs: ['get', 'find'], nouns: ['population'], module: 'geo', does: 'give the population of a city',
    asks: ['What is the population of {city}[ in {year}]?', 'How many people live in {city}?'],
    params: [
      { key: 'city', names: ['city', 'place'], type: 'string', description: 'city name', value: oneOf(CITY_NAMES) },
      { key: 'year', names: ['year'], type: 'integer', description: 'census year', optional: true, value: int(1990, 2025) },
    ] },
  { verbs: ['find', 'search'], nouns: ['restaurants'], module: 'places', does: 'find restaurants nearby',
    asks: ['Find {cuisine} restaurants in {city}[ with at least {rating} stars].', 'Where can I eat {cuisine} food in {city}?'],
    params: [
      { key: 'city', names: ['location', 'city'], type: 'string', description: 'city to search', value: oneOf(CITY_NAMES) },
      { key: 'cuisine', names: ['cuisine', 'food_type'], type: 'string', description: 'kind of food', value: oneOf(['Thai', 'Italian', 'Mexican', 'Indian', 'vegan']) },
      { key: 'rating', names: ['min_rating', 'rating'], type: 'number', description: 'lowest star rating', optional: true, value: oneOf([3, 4]) },
    ] },
  { verbs: ['get', 'find'], nouns: ['movie', 'showtimes'], module: 'movies', does: 'list cinema showtimes',
    asks: ['When is "{movie}" playing in {city}[ on {date}]?', 'Show me showtimes for "{movie}" in {city}.'],
    params: [
      { key: 'movie', names: ['movie', 'title'], type: 'string', description: 'film title', value: oneOf(['The Long Road', 'Blue Harbor', 'Night Train', 'Paper Moons']) },
      { key: 'city', names: ['city', 'location'], type: 'string', description: 'city', value: oneOf(CITY_NAMES) },
      { key: 'date', names: ['date'], type: 'string', description: 'date as YYYY-MM-DD', optional: true, value: date },
    ] },
  { verbs: ['search', 'find'], nouns: ['books'], module: 'library', does: 'search a library catalog for books',
    asks: ['Find books by {author}[ published after {year}].', 'Search the catalog for books written by {author}.'],
    params: [
      { key: 'author', names: ['author', 'writer'], type: 'string', description: 'author name', value: oneOf(PEOPLE) },
      { key: 'year', names: ['published_after', 'min_year'], type: 'integer', description: 'earliest publication year', optional: true, value: int(1950, 2020) },
    ] },
  { verbs: ['get', 'lookup'], nouns: ['holidays'], module: 'calendar', does: 'list the public holidays of a country',
    asks: ['What are the public holidays in {country} in {year}?', 'List {country}\'s holidays for {year}[ in {month}].'],
    params: [
      { key: 'country', names: ['country', 'country_name'], type: 'string', description: 'country', value: oneOf(['Japan', 'Brazil', 'Canada', 'India', 'Kenya', 'Norway']) },
      { key: 'year', names: ['year'], type: 'integer', description: 'year', value: int(2024, 2028) },
      { key: 'month', names: ['month'], type: 'string', description: 'month name', optional: true, value: oneOf(MONTHS) },
    ] },
  { verbs: ['calculate', 'compute'], nouns: ['tip'], module: 'finance', does: 'compute the tip on a bill',
    asks: ['What tip should I leave on a {bill} dollar bill at {percent} percent[, split {people} ways]?', 'Calculate a {percent}% tip on {bill}.'],
    params: [
      { key: 'bill', names: ['bill_amount', 'total'], type: 'number', description: 'bill total', value: money(10, 400) },
      { key: 'percent', names: ['tip_percent', 'percentage'], type: 'integer', description: 'tip percentage', value: oneOf([10, 15, 18, 20]) },
      { key: 'people', names: ['split', 'people'], type: 'integer', description: 'number of people splitting', optional: true, value: int(2, 6) },
    ] },
  { verbs: ['get'], nouns: ['route', 'directions'], module: 'maps', does: 'give directions between two places',
    asks: ['How do I get from {origin} to {destination}[ by {mode}]?', 'Give me directions from {origin} to {destination}.'],
    params: [
      { key: 'origin', names: ['start', 'origin'], type: 'string', description: 'starting place', value: oneOf(CITY_NAMES) },
      { key: 'destination', names: ['end', 'destination'], type: 'string', description: 'where to go', value: oneOf(WORLD_CITIES) },
      { key: 'mode', names: ['mode', 'travel_mode'], type: 'string', enum: ['driving', 'walking', 'transit'], description: 'how to travel', optional: true, value: oneOf(['driving', 'walking', 'transit']) },
    ] },
];
