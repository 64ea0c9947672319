// Graphs. Time series use uPlot (small, fast, canvas, no dependencies); rankings and breakdowns are
// HTML bars in a table, which stay readable, accessible and selectable by tests.

import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatNumber } from '../format';

const PALETTE = ['#1f77b4', '#2ca02c', '#ff7f0e', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

export interface SeriesSpec {
  label: string;
  values: (number | null)[];
}

/** A line chart over time; `times` are RFC 3339 strings or epoch seconds. */
export function TimeChart(props: {
  title: string;
  times: (string | number)[];
  series: SeriesSpec[];
  height?: number;
  format?: (v: number) => string;
  bars?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = props.times.map((t) => (typeof t === 'number' ? t : Date.parse(t) / 1000));
    const fmt = props.format ?? ((v: number) => formatNumber(v));
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: props.height ?? 220,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      axes: [{}, { values: (_u, ticks) => ticks.map(fmt), size: 60 }],
      series: [
        {},
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          fill: props.bars ? PALETTE[i % PALETTE.length] + '55' : undefined,
          paths: props.bars ? uPlot.paths.bars!({ size: [0.8, 40] }) : undefined,
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v)),
        })),
      ],
    };
    const plot = new uPlot(opts, [xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth), height: opts.height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [JSON.stringify(props.times), JSON.stringify(props.series), props.height, props.bars]);
  return <figure class="chart" aria-label={props.title} role="img" ref={box} />;
}

/** A ranking as a table with a proportional bar in each row. */
export function BarTable(props: {
  label: string;
  keyLabel: string;
  rows: { key: string; value: number; extra?: string; href?: string }[];
  valueLabel?: string;
  format?: (v: number) => string;
}) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  const fmt = props.format ?? formatNumber;
  return (
    <table class="bars" aria-label={props.label}>
      <thead>
        <tr>
          <th scope="col">{props.keyLabel}</th>
          <th scope="col" class="num">
            {props.valueLabel ?? 'Count'}
          </th>
          <th scope="col" class="barcol">
            <span class="sr-only">Share</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr key={r.key}>
            <td class="addr">{r.href ? <a href={r.href}>{r.key || '(none)'}</a> : r.key || '(none)'}</td>
            <td class="num">
              {fmt(r.value)}
              {r.extra ? <span class="muted"> {r.extra}</span> : null}
            </td>
            <td class="barcol">
              <span class="bar" style={{ width: `${(100 * r.value) / max}%` }} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
