// The admin console's live charts: samples /metrics every 2 s, turns its counters into rates, and draws each series
// as a small SVG line chart of the last five minutes. Drawn by hand: the page loads no library.
import { parseMetrics, total } from './admin-data.js';

/** How often /metrics is read, and how much history a chart shows. */
export const INTERVAL_MS = 2000;
export const WINDOW_MS = 5 * 60_000;

/**
 * The charts: a gauge is shown as it is, a counter as its rate per second between two samples. The names are those
 * of docs/operations.md; every series is summed over its labels (the `node` label, and `type` or `code`).
 */
export const SERIES = [
  { id: 'connections', title: 'Connections open', metric: 'tidings_connections_open', kind: 'gauge', unit: '' },
  { id: 'messages-in', title: 'Messages in', metric: 'tidings_messages_in_total', kind: 'rate', unit: '/s' },
  { id: 'messages-out', title: 'Messages out', metric: 'tidings_messages_out_total', kind: 'rate', unit: '/s' },
  { id: 'events-published', title: 'Events published', metric: 'tidings_events_published_total', kind: 'rate', unit: '/s' },
  { id: 'events-delivered', title: 'Events fanned out', metric: 'tidings_events_delivered_total', kind: 'rate', unit: '/s' },
  { id: 'errors', title: 'Errors sent', metric: 'tidings_errors_total', kind: 'rate', unit: '/s', by: 'code' },
];

/**
 * Reads /metrics on a timer, from sign-in to sign-out, so that the charts have history when their view opens. Keeps
 * each series' points `{t, v}` over the window, and for a series split `by` a label the latest rate of each value.
 */
export class Sampler {
  /** `read` resolves to the metrics text (admin-data's metricsText). */
  constructor(read) {
    this.read = read;
    this.points = new Map(SERIES.map((s) => [s.id, []]));
    this.breakdown = new Map();
    this.previous = undefined;
    this.error = undefined;
    this.listeners = new Set();
    this.timer = undefined;
    this.samples = 0;
  }

  start() {
    if (this.timer !== undefined) return;
    const tick = async () => {
      await this.sample();
      // The next read is planned after this one ends, so a slow server never has two at once.
      if (this.timer !== undefined) this.timer = setTimeout(tick, INTERVAL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Calls `listener()` after every sample, until the returned function is called. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async sample() {
    let metrics;
    const t = Date.now();
    try {
      metrics = parseMetrics(await this.read());
      this.error = undefined;
    } catch (error) {
      // A gap, not a zero: the chart's line breaks where the server did not answer.
      this.error = error;
      this.previous = undefined;
      this.notify();
      return;
    }
    const current = { t, values: new Map(), split: new Map() };
    for (const series of SERIES) {
      // A counter no one has touched yet is not exported at all: it is 0, not unknown.
      current.values.set(series.id, total(metrics, series.metric) ?? 0);
      if (series.by) {
        const parts = new Map();
        for (const { labels, value } of metrics.get(series.metric) ?? []) {
          const key = labels[series.by] ?? '';
          parts.set(key, (parts.get(key) ?? 0) + value);
        }
        current.split.set(series.id, parts);
      }
    }
    for (const series of SERIES) {
      const value = current.values.get(series.id);
      let v;
      if (series.kind === 'gauge') v = value;
      else if (this.previous) v = rate(this.previous.values.get(series.id), value, t - this.previous.t);
      if (v !== undefined) this.points.get(series.id).push({ t, v });
      if (series.by && this.previous) {
        const before = this.previous.split.get(series.id);
        const rates = new Map();
        for (const [key, count] of current.split.get(series.id)) {
          rates.set(key, { count, rate: rate(before.get(key) ?? 0, count, t - this.previous.t) });
        }
        this.breakdown.set(series.id, rates);
      }
    }
    for (const points of this.points.values()) {
      while (points.length > 0 && points[0].t < t - WINDOW_MS) points.shift();
    }
    this.previous = current;
    this.samples += 1;
    this.notify();
  }

  notify() {
    for (const listener of this.listeners) listener();
  }
}

/** A counter's rate per second; a counter that went down belongs to a restarted server, and counts from 0. */
function rate(before, after, ms) {
  if (ms <= 0) return undefined;
  const delta = after >= before ? after - before : after;
  return (delta * 1000) / ms;
}

// --- Drawing --------------------------------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 90;
/** Room on the left for the scale's labels, and at the bottom for the time axis. */
const LEFT = 34;
const BOTTOM = 16;

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** A number for people: whole when large, with one or two decimals when small. */
export function formatNumber(value) {
  if (value === undefined || Number.isNaN(value)) return '–';
  if (value >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString('en');
  return value.toFixed(value >= 10 ? 1 : 2);
}

/** A round scale top at or above the largest value, so the grid's label reads well: 1, 2, 5, 10, 20, ... */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
}

/**
 * One chart: a `<figure>` with the series' title and latest value as text (the chart is never the only way to read
 * a number), and an SVG line of its points over the window. `update` redraws it; it keeps its nodes between draws.
 */
export class Chart {
  constructor(series) {
    this.series = series;
    this.figure = document.createElement('figure');
    this.figure.className = 'chart';
    this.figure.dataset.series = series.id;
    const caption = document.createElement('figcaption');
    const title = document.createElement('span');
    title.className = 'chart-title';
    title.textContent = series.title;
    this.value = document.createElement('span');
    this.value.className = 'chart-value';
    caption.append(title, this.value);
    this.svg = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img' });
    this.top = svg('text', { x: LEFT - 4, y: 10, 'text-anchor': 'end', class: 'chart-scale' });
    const zero = svg('text', { x: LEFT - 4, y: HEIGHT - BOTTOM, 'text-anchor': 'end', class: 'chart-scale' });
    zero.textContent = '0';
    const start = svg('text', { x: LEFT, y: HEIGHT - 3, class: 'chart-scale' });
    start.textContent = `−${WINDOW_MS / 60_000} min`;
    const end = svg('text', { x: WIDTH, y: HEIGHT - 3, 'text-anchor': 'end', class: 'chart-scale' });
    end.textContent = 'now';
    const plot = { x1: LEFT, x2: WIDTH, class: 'chart-grid' };
    this.area = svg('path', { class: 'chart-area' });
    this.line = svg('path', { class: 'chart-line' });
    this.svg.append(
      svg('line', { ...plot, y1: 6, y2: 6 }),
      svg('line', { ...plot, y1: (HEIGHT - BOTTOM + 6) / 2, y2: (HEIGHT - BOTTOM + 6) / 2 }),
      svg('line', { ...plot, y1: HEIGHT - BOTTOM, y2: HEIGHT - BOTTOM, class: 'chart-axis' }),
      this.top, zero, start, end, this.area, this.line,
    );
    this.breakdown = document.createElement('p');
    this.breakdown.className = 'chart-breakdown';
    this.breakdown.hidden = true;
    this.figure.append(caption, this.svg, this.breakdown);
  }

  /** Draws `points` ({t, v}) as of `now`; `parts` (label value to {count, rate}) lists a split series' labels. */
  update(points, now, parts) {
    const { unit } = this.series;
    const latest = points.at(-1)?.v;
    const max = niceMax(Math.max(0, ...points.map((p) => p.v)));
    this.value.textContent = latest === undefined ? 'waiting for samples' : `${formatNumber(latest)}${unit}`;
    this.top.textContent = formatNumber(max);
    const x = (t) => LEFT + ((t - (now - WINDOW_MS)) / WINDOW_MS) * (WIDTH - LEFT);
    const y = (v) => HEIGHT - BOTTOM - (v / max) * (HEIGHT - BOTTOM - 6);
    // A gap of more than two intervals (the server did not answer) starts a new stretch of line.
    let line = '';
    let area = '';
    let stretch = [];
    const close = () => {
      if (stretch.length === 0) return;
      const d = stretch.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
      line += d;
      area += `${d}L${x(stretch.at(-1).t).toFixed(1)},${y(0)}L${x(stretch[0].t).toFixed(1)},${y(0)}Z`;
      stretch = [];
    };
    for (const point of points) {
      if (stretch.length > 0 && point.t - stretch.at(-1).t > 2.5 * INTERVAL_MS) close();
      stretch.push(point);
    }
    close();
    this.line.setAttribute('d', line || 'M0,0');
    this.area.setAttribute('d', area || 'M0,0');
    this.figure.dataset.points = String(points.length);
    const peak = points.length ? `, at most ${formatNumber(Math.max(...points.map((p) => p.v)))}${unit}` : '';
    this.svg.setAttribute(
      'aria-label',
      `${this.series.title}: ${latest === undefined ? 'no samples yet' : `${formatNumber(latest)}${unit} now${peak}`} ` +
        `over the last ${WINDOW_MS / 60_000} minutes`,
    );
    if (parts !== undefined) {
      const busy = [...parts].filter(([, p]) => p.count > 0).sort((a, b) => b[1].count - a[1].count);
      this.breakdown.hidden = false;
      this.breakdown.textContent = busy.length === 0
        ? 'None since the server started.'
        : busy.map(([key, p]) => `${key || '(none)'}: ${formatNumber(p.rate)}${unit} (${formatNumber(p.count)} in all)`).join(' · ');
    }
  }
}

/**
 * The charts view: one chart per series, redrawn after each sample while the view is shown. `stop` ends the
 * redrawing; the sampler goes on for the next visit.
 */
export function chartsView(sampler) {
  const element = document.createElement('div');
  element.className = 'charts-view';
  const intro = document.createElement('p');
  intro.className = 'hint';
  intro.textContent = `Rates per second from /metrics, read every ${INTERVAL_MS / 1000} s since you signed in; the ` +
    `last ${WINDOW_MS / 60_000} minutes. Each chart states its latest value in text.`;
  const status = document.createElement('p');
  status.className = 'view-status';
  status.setAttribute('role', 'status');
  const grid = document.createElement('div');
  grid.className = 'charts';
  const charts = SERIES.map((series) => new Chart(series));
  grid.append(...charts.map((c) => c.figure));
  element.append(intro, status, grid);
  const draw = () => {
    const now = Date.now();
    for (const chart of charts) {
      chart.update(sampler.points.get(chart.series.id), now, chart.series.by ? sampler.breakdown.get(chart.series.id) ?? new Map() : undefined);
    }
    status.textContent = sampler.error ? `/metrics did not answer: ${sampler.error.message}` : '';
    element.dataset.samples = String(sampler.samples);
  };
  let unsubscribe;
  return {
    element,
    start() {
      draw();
      unsubscribe = sampler.subscribe(draw);
    },
    stop() {
      unsubscribe?.();
    },
  };
}
