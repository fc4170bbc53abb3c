// Draws a BatchRunner sweep report (the JSON SweepReportBuilder wrote) with Apache ECharts. Used by the offline report
// file and by the controller's dashboard, so both show the same figures.
// Everything a workload or a spec named (outputs, parameters, reasons) reaches the page as text (textContent) or a
// canvas label, never as HTML; tooltips are drawn on the canvas (renderMode 'richText') for the same reason.
(function (global) {
  'use strict';

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function number(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(digits === undefined ? 3 : digits);
    return v.toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 4 : digits });
  }

  function money(v) {
    if (v === null || v === undefined) return 'no price';
    return '$' + v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: v < 1 ? 6 : 2 });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '–';
    if (seconds < 60) return number(seconds, 2) + ' s';
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.round(seconds % 60);
    return (h > 0 ? h + ' h ' : '') + m + ' min ' + s + ' s';
  }

  function time(epochSeconds) {
    return epochSeconds === null || epochSeconds === undefined ? '–' : new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
  }

  const base = {
    animation: false,
    tooltip: { renderMode: 'richText', trigger: 'axis', confine: true },
    grid: { left: 64, right: 24, top: 48, bottom: 56, containLabel: true },
    toolbox: { show: false },
  };

  function merge(option) { return Object.assign({}, base, option); }

  function axisOf(parameter, labels) {
    return parameter && parameter.numeric
      ? { type: 'value', name: parameter.name, nameLocation: 'middle', nameGap: 28, scale: true }
      : { type: 'category', name: parameter ? parameter.name : '', nameLocation: 'middle', nameGap: 28, data: labels };
  }

  // The 95% interval as one polygon (upper bounds, then lower bounds back), drawn once for the whole series: stacking
  // two value axes would stack x as well.
  function band(corners) {
    return {
      name: '95% interval', type: 'custom', silent: true, z: 1, tooltip: { show: false },
      data: corners, encode: { x: 0, y: [1, 2] },
      renderItem: (params, api) => {
        if (params.dataIndex !== 0) return null;
        const upper = corners.map(c => api.coord([c[0], c[2]]));
        const lower = corners.map(c => api.coord([c[0], c[1]])).reverse();
        return { type: 'polygon', shape: { points: upper.concat(lower) }, style: { fill: 'rgba(84, 112, 198, 0.22)', stroke: 'none' } };
      },
    };
  }

  // An output against a parameter: the mean over the indexes at each value, and its 95% interval as a band.
  function effect(report, e) {
    const p = report.parameters.find(q => q.name === e.parameter);
    const pts = e.points;
    const xs = pts.map((q, i) => (p && p.numeric ? Number(q.x) : i));
    const corners = pts.map((q, i) => [xs[i], q.low === null ? q.mean : q.low, q.high === null ? q.mean : q.high]);
    return merge({
      title: { text: e.output + ' by ' + e.parameter, subtext: 'mean over indexes, 95% interval' + (e.binned ? ' (values binned)' : ''), left: 'center' },
      xAxis: axisOf(p, pts.map(q => q.x)),
      yAxis: valueAxis(e.output),
      series: [band(corners), { name: 'mean', type: 'line', data: pts.map((q, i) => [xs[i], q.mean]), symbolSize: 6, color: '#5470c6', z: 2 }],
    });
  }

  function valueAxis(name, extra) {
    return Object.assign({ type: 'value', name: name, nameLocation: 'middle', nameGap: 52, scale: true }, extra || {});
  }

  function heatmap(report, h) {
    const values = h.cells.map(c => c.mean);
    return merge({
      title: { text: h.output + ' over ' + h.x + ' × ' + h.y, subtext: 'mean over indexes', left: 'center' },
      tooltip: { renderMode: 'richText', trigger: 'item', confine: true },
      grid: { left: 64, right: 96, top: 56, bottom: 56, containLabel: true },
      xAxis: { type: 'category', data: h.xs, name: h.x, nameLocation: 'middle', nameGap: 28 },
      yAxis: { type: 'category', data: h.ys, name: h.y, nameLocation: 'middle', nameGap: 52 },
      visualMap: { min: Math.min.apply(null, values), max: Math.max.apply(null, values), calculable: true, orient: 'vertical', right: 8, top: 'middle' },
      series: [{ name: h.output, type: 'heatmap', data: h.cells.map(c => [c.x, c.y, c.mean]) }],
    });
  }

  function failureRate(report, f) {
    return merge({
      title: { text: 'Failed indexes by ' + f.parameter, subtext: 'share of indexes that never succeeded' + (f.binned ? ' (values binned)' : ''), left: 'center' },
      xAxis: { type: 'category', data: f.points.map(q => q.x), name: f.parameter, nameLocation: 'middle', nameGap: 28 },
      yAxis: valueAxis('failed (%)', { scale: false, max: 100 }),
      series: [{ name: 'failed (%)', type: 'bar', data: f.points.map(q => q.indexes === 0 ? 0 : Math.round(10000 * q.failed / q.indexes) / 100) }],
    });
  }

  function durations(report) {
    const d = report.durations;
    const bins = [];
    for (let i = 0; i < 30; i++) bins.push({ bin: i, succeeded: 0, failed: 0, other: 0 });
    d.bins.forEach(b => { bins[b.bin] = b; });
    const edge = v => String(Number(v.toPrecision(3)));
    const labels = bins.map(b => edge(d.low + b.bin * d.width) + '–' + edge(d.low + (b.bin + 1) * d.width));
    return merge({
      title: { text: 'Attempt durations', subtext: 'seconds, every attempt that ran (not reused)', left: 'center' },
      legend: { bottom: 0 },
      xAxis: { type: 'category', data: labels, name: 'seconds', nameLocation: 'middle', nameGap: 40 },
      yAxis: valueAxis('attempts', { scale: false }),
      series: [['succeeded', '#5470c6'], ['failed', '#ee6666'], ['other', '#a0a7b4']].map(([k, color]) => ({ name: k, type: 'bar', stack: 'outcome', color: color, data: bins.map(b => b[k]) })),
    });
  }

  // Attempts running over time by backend: in a bucket where something started or ended the most at once, in a
  // quiet one what ran at the end of the last busy one.
  function timeline(report) {
    const t = report.timeline;
    const at = b => (t.start + b * t.bucketSeconds) * 1000;
    const series = t.running.map(r => {
      const byBucket = new Map(r.points.map(q => [q.bucket, q]));
      const data = [];
      let last = 0;
      for (let b = 0; b < t.buckets; b++) {
        const q = byBucket.get(b);
        data.push([at(b), q ? q.most : last]);
        if (q) last = q.last;
      }
      return { name: r.backend || '(no backend)', type: 'line', step: 'end', symbol: 'none', data: data, areaStyle: { opacity: 0.15 } };
    });
    series.push({ name: 'retries started', type: 'bar', data: t.retries.map(q => [at(q.bucket), q.count]), barMaxWidth: 6 });
    return merge({
      title: { text: 'Attempts over time', subtext: 'running at once by backend; retries started', left: 'center' },
      legend: { bottom: 0 },
      xAxis: { type: 'time', name: 'time (UTC)', nameLocation: 'middle', nameGap: 40 },
      yAxis: valueAxis('attempts', { scale: false, minInterval: 1 }),
      series: series,
    });
  }

  function costPerPoint(report) {
    const c = report.cost;
    const priced = c.byPoint.every(g => g.cost !== null);
    const rows = c.byPoint.slice().reverse();
    return merge({
      title: { text: priced ? 'Cost per point' : 'vCPU-hours per point', subtext: (c.points > c.byPoint.length ? 'the ' + c.byPoint.length + ' most costly of ' + c.points + ' points' : c.points + ' points') + ', repeats summed', left: 'center' },
      grid: { left: 16, right: 32, top: 56, bottom: 32, containLabel: true },
      tooltip: { renderMode: 'richText', trigger: 'axis', confine: true },
      xAxis: { type: 'value', name: priced ? 'USD' : 'vCPU-hours', nameLocation: 'middle', nameGap: 28 },
      yAxis: { type: 'category', data: rows.map(g => g.label), axisLabel: { width: 260, overflow: 'truncate' } },
      series: [{ name: priced ? 'cost (USD)' : 'vCPU-hours', type: 'bar', data: rows.map(g => (priced ? g.cost : g.vcpuHours)) }],
    });
  }

  function figuresOf(report) {
    const figures = [];
    report.effects.forEach((e, i) => figures.push({ id: 'effect-' + i, section: 'outputs', option: effect(report, e) }));
    report.heatmaps.forEach((h, i) => figures.push({ id: 'heatmap-' + i, section: 'outputs', option: heatmap(report, h) }));
    if (report.summary.failed > 0) report.failureRates.forEach((f, i) => figures.push({ id: 'failures-' + i, section: 'failures', option: failureRate(report, f) }));
    if (report.durations.bins.length > 0) figures.push({ id: 'durations', section: 'time', option: durations(report) });
    if (report.timeline.buckets > 0) figures.push({ id: 'timeline', section: 'time', option: timeline(report) });
    if (report.cost.byPoint.length > 0) figures.push({ id: 'cost-per-point', section: 'cost', option: costPerPoint(report) });
    return figures;
  }

  function download(name, href) {
    const a = el('a');
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  // SVG through ECharts' own server-side renderer (it also runs in a browser): the same option, drawn as SVG.
  function svgOf(option, width, height) {
    const chart = global.echarts.init(null, null, { renderer: 'svg', ssr: true, width: width, height: height });
    try {
      chart.setOption(option);
      return chart.renderToSVGString();
    } finally {
      chart.dispose();
    }
  }

  function figure(parent, f, stem) {
    const box = el('figure', null, 'figure');
    box.id = f.id;
    const bar = el('div', null, 'export');
    const png = el('button', 'PNG');
    const svg = el('button', 'SVG');
    png.type = svg.type = 'button';
    bar.append(png, svg);
    const canvas = el('div', null, 'chart');
    box.append(bar, canvas);
    parent.appendChild(box);
    const chart = global.echarts.init(canvas, null, { renderer: 'canvas' });
    chart.setOption(f.option);
    png.addEventListener('click', () => download(stem + '-' + f.id + '.png', chart.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: '#fff' })));
    svg.addEventListener('click', () => {
      const text = svgOf(f.option, canvas.clientWidth || 720, canvas.clientHeight || 360);
      const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
      download(stem + '-' + f.id + '.svg', url);
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
    return chart;
  }

  function table(headers, rows) {
    const t = el('table');
    const head = el('tr');
    headers.forEach(h => head.appendChild(el('th', h)));
    t.appendChild(el('thead')).appendChild(head);
    const body = el('tbody');
    rows.forEach(r => {
      const tr = el('tr');
      r.forEach(cell => {
        const td = el('td');
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? '' : String(cell);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  function summary(report) {
    const s = report.summary;
    const box = el('section', null, 'summary');
    const cards = [
      ['Indexes', number(s.indexes, 0)],
      ['Succeeded', number(s.succeeded, 0)],
      ['Failed', number(s.failed, 0)],
      ['Attempts', number(s.attempts, 0) + (s.retries > 0 ? ' (' + number(s.retries, 0) + ' retries)' : '')],
      ['Reused', number(s.reused, 0)],
      ['Result rows', number(s.resultRows, 0)],
      ['Wall time', s.firstStarted === null ? '–' : duration(s.lastFinished - s.firstStarted)],
      ['Attempt time', duration(s.attemptSeconds)],
      ['vCPU-hours', number(report.cost.vcpuHours, 4)],
      ['Cost', money(report.cost.total)],
    ];
    cards.forEach(([k, v]) => {
      const card = el('div', null, 'card');
      card.dataset.key = k;
      card.append(el('div', k, 'label'), el('div', v, 'value'));
      box.appendChild(card);
    });
    return box;
  }

  function warnings(report) {
    const s = report.summary;
    const list = [];
    if (s.malformedLines > 0) list.push(number(s.malformedLines, 0) + ' output lines were not a JSON object or a CSV row and are left out of the results');
    if (s.emptyOutputs > 0) list.push(number(s.emptyOutputs, 0) + ' succeeded attempts wrote no result rows');
    report.notes.forEach(n => list.push(n));
    if (list.length === 0) return null;
    const box = el('section', null, 'warnings');
    box.appendChild(el('h2', 'Notes'));
    const ul = el('ul');
    list.forEach(w => ul.appendChild(el('li', w)));
    box.appendChild(ul);
    return box;
  }

  function failedTable(report) {
    const f = report.failed;
    const box = el('section', null, 'failed');
    box.id = 'failed-indexes';
    box.appendChild(el('h2', 'Failed indexes (' + number(f.total, 0) + ')'));
    if (f.total === 0) {
      box.appendChild(el('p', 'Every index succeeded.'));
      return box;
    }
    if (f.total > f.rows.length) box.appendChild(el('p', 'The first ' + f.rows.length + ' by index; the ledger has them all (batchrunner query).'));
    box.appendChild(table(['Index', 'Parameters', 'Attempts', 'Last status', 'Exit code', 'Reason', 'Logs'], f.rows.map(r => {
      const logs = el('div');
      // A file:// link (local store) or the dashboard's own path to the log (served by the controller); an s3://
      // location is shown as text.
      if (r.logs && /^(file:\/\/|\/)/.test(r.logs) && !/^\/\//.test(r.logs)) {
        const a = el('a', 'logs');
        a.href = r.logs;
        if (r.logs.charAt(0) === '/') a.target = '_blank';
        logs.appendChild(a);
      } else if (r.logs) {
        logs.appendChild(el('div', r.logs));
      }
      logs.appendChild(el('code', r.command));
      return [r.index, r.parameters, r.attempts, r.status, r.exitCode, r.reason, logs];
    })));
    return box;
  }

  function costTable(report) {
    const c = report.cost;
    const box = el('section', null, 'cost');
    box.appendChild(el('h2', 'Cost'));
    box.appendChild(table(['Backend', 'Attempts', 'vCPU-hours', 'Cost'], c.byBackend.map(g => [g.label, g.attempts, number(g.vcpuHours, 6), money(g.cost)])));
    box.appendChild(el('p', 'Total ' + money(c.total) + ' for ' + number(c.vcpuHours, 6) + ' vCPU-hours and ' + number(c.gibHours, 6) + ' GiB-hours. Prices: ' + c.prices + '.', 'note'));
    return box;
  }

  const sections = [
    ['outputs', 'Outputs by parameter'],
    ['failures', 'Failures by parameter'],
    ['time', 'Time'],
    ['cost', 'Cost per point'],
  ];

  // Draws the report into root; returns the ECharts instances (the dashboard disposes them when it draws again).
  function render(root, report) {
    const stem = (report.batchJob + '-' + report.run).replace(/[^A-Za-z0-9._-]/g, '_');
    root.textContent = '';
    const header = el('header');
    header.append(el('h1', report.batchJob), el('p', 'namespace ' + report.namespace + ' · run ' + report.run + ' · ' + report.store + ' · generated ' + report.generatedAt, 'meta'));
    root.appendChild(header);
    root.appendChild(summary(report));
    const notes = warnings(report);
    if (notes) root.appendChild(notes);
    const figures = figuresOf(report);
    const charts = [];
    sections.forEach(([key, title]) => {
      const mine = figures.filter(f => f.section === key);
      if (key === 'outputs' && mine.length === 0) {
        const box = el('section');
        box.append(el('h2', title), el('p', report.outputs.length === 0 ? 'The workload wrote no numeric output.' : 'No parameter varies in this run.'));
        root.appendChild(box);
      }
      if (mine.length === 0) return;
      const box = el('section', null, 'figures');
      box.appendChild(el('h2', title));
      const grid = el('div', null, 'grid');
      box.appendChild(grid);
      root.appendChild(box);
      mine.forEach(f => charts.push(figure(grid, f, stem)));
      if (key === 'cost') box.appendChild(costTable(report));
    });
    if (!figures.some(f => f.section === 'cost')) root.appendChild(costTable(report));
    root.appendChild(failedTable(report));
    global.addEventListener('resize', () => charts.forEach(c => c.resize()));
    document.documentElement.dataset.figures = String(charts.length);
    return charts;
  }

  // The report file carries ECharts gzip-compressed (a third of its size): unpacked here, then run as a script.
  async function loadEcharts() {
    if (global.echarts) return;
    const packed = document.getElementById('echarts-gz');
    const bytes = Uint8Array.from(atob(packed.textContent.trim()), c => c.charCodeAt(0));
    const source = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
    const script = el('script');
    script.textContent = source;
    document.head.appendChild(script);
  }

  async function load() {
    const root = document.getElementById('report');
    try {
      await loadEcharts();
      render(root, JSON.parse(document.getElementById('report-data').textContent));
      document.documentElement.dataset.ready = 'true';
    } catch (e) {
      root.appendChild(el('p', 'The report could not be drawn: ' + e, 'error'));
      document.documentElement.dataset.ready = 'error';
      throw e;
    }
  }

  global.BatchRunnerReport = { render: render, load: load, figuresOf: figuresOf };
})(window);
