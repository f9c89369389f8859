/*
 * The page's own script, as a string (it runs in the browser, never in Node). It draws each chart with Observable
 * Plot from the rows embedded in the page; every chart gets one mark element per row (a dot on each line point, a
 * tick on each bar's top or each execution's start), which is what the browser test counts against the SQL.
 */
export const CLIENT_JS = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  function draw(c) {
    var o = { x: c.x, y: c.y };
    var fill = c.z ? { fill: c.z } : {};
    var facet = {};
    if (c.fx) facet.fx = c.fx;
    if (c.fy) facet.fy = c.fy;
    var marks = [];
    var opts = { width: 720, height: c.fy ? 200 * new Set(c.rows.map(function (r) { return r[c.fy]; })).size : 260,
      marginLeft: c.kind === 'gantt' ? 110 : 60, marginBottom: 40, grid: true,
      x: { label: c.xLabel || c.x }, y: { label: c.yLabel || c.y }, color: { legend: !!c.z } };
    if (c.kind === 'line') {
      marks.push(Plot.line(c.rows, Object.assign({}, o, c.z ? { stroke: c.z } : {}, facet)));
      marks.push(Plot.dot(c.rows, Object.assign({}, o, c.z ? { fill: c.z } : {}, facet, { r: 2.5, tip: true })));
    } else if (c.kind === 'gantt') {
      marks.push(Plot.barX(c.rows, Object.assign({ x1: c.x, x2: c.x2, y: c.y, tip: true }, fill)));
      // A bar of an instant node has no width: a tick at each start keeps one visible mark per execution.
      marks.push(Plot.tickX(c.rows, { x: c.x, y: c.y, stroke: '#333' }));
      opts.y = { label: null, domain: c.rows.map(function (r) { return r[c.y]; }) };
      opts.height = Math.max(120, 28 * c.rows.length + 50);
      opts.x.label = c.xLabel;
    } else {
      marks.push(Plot.barY(c.rows, Object.assign({}, o, fill, facet, { tip: true })));
      // Plot draws no rect for a zero bar: a tick on each bar's top (stacked: each segment's top) shows zeros too.
      var top = Object.assign({}, o, c.z ? { z: c.z } : {}, facet, { stroke: '#333' });
      marks.push(Plot.tickY(c.rows, c.kind === 'stack' ? Plot.stackY2(top) : top));
      opts.x = { label: c.xLabel || c.x, type: 'band', domain: c.xOrder || undefined, tickRotate: c.rows.length > 12 ? -30 : 0 };
      if (c.xOrder) opts.x.domain = c.xOrder;
      marks.push(Plot.ruleY([0]));
    }
    if (c.yDomain) opts.y.domain = c.yDomain;
    opts.marks = marks;
    return Plot.plot(opts);
  }
  var failures = 0;
  document.querySelectorAll('figure.chart').forEach(function (fig) {
    var c = data.charts[fig.dataset.chart];
    try {
      fig.querySelector('.plot').appendChild(draw(c));
    } catch (e) {
      failures++;
      fig.querySelector('.plot').textContent = 'chart failed: ' + e;
      console.error('chart ' + c.id + ' failed: ' + e);
    }
  });
  document.body.dataset.rendered = failures ? 'failed' : 'ok';
})();
`;
