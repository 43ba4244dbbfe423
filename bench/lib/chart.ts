/**
 * chart.svg: each variant's requests/s as a fraction of its bare framework, per scenario.
 * Vega-Lite compiled to Vega and rendered to SVG in Node (no canvas, no browser).
 */
import type { BenchResults } from './results.ts';
import { SCENARIOS, targetFloor } from './variants.ts';

/** The parts of vega and vega-lite used here, typed structurally (they are dev-only, loaded lazily). */
interface VegaLite {
  compile(spec: object): { spec: object };
}
interface Vega {
  parse(spec: object): unknown;
  View: new (
    runtime: unknown,
    options: { renderer: 'none' },
  ) => {
    toSVG(): Promise<string>;
    finalize(): void;
  };
}

async function load<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    throw new Error(`[bench] the chart needs ${name}: npm install --save-dev vega vega-lite`, { cause: error });
  }
}

const COLORS: Record<string, string> = {
  floor: '#e0e0e0',
  'express-session': '#9e9e9e',
  '@fastify/session': '#bdbdbd',
  Tessera: '#1f6fb4',
};

/** The Vega-Lite spec of the chart (exported for inspection and tests). */
export function chartSpec(results: BenchResults): object {
  const values = results.variants.flatMap((variant) =>
    variant.status !== 'ok' || variant.family === 'bare'
      ? []
      : variant.scenarios
          .filter((s) => s.status === 'ok' && s.ratio !== null)
          .map((s) => ({
            variant: variant.label,
            family: variant.family,
            scenario: SCENARIOS.find((c) => c.id === s.scenario)?.label ?? s.scenario,
            ratio: Math.round((s.ratio as number) * 100) / 100,
            target: targetFloor(s.target ?? undefined),
          })),
  );
  const order = results.variants.filter((v) => v.family !== 'bare').map((v) => v.label);
  const families = Object.keys(COLORS).filter((family) => values.some((v) => v.family === family));
  const top = Math.max(1.1, ...values.map((v) => v.ratio + 0.15));
  const y = { field: 'variant', type: 'nominal', sort: order, title: null, axis: { labelLimit: 600 } };
  const x = {
    field: 'ratio',
    type: 'quantitative',
    scale: { domain: [0, top] },
    title: 'fraction of bare req/s',
    axis: { values: [0, 0.25, 0.5, 0.75, 1], format: '.2f' },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Requests/s with sessions, as a fraction of the same framework without sessions',
      subtitle: [
        `${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}; wrk, ${results.settings.connections} connections; median of ${results.settings.runs} runs of ${results.settings.durationSeconds} s.`,
        'Dashed line: the bare framework (1.0). Black tick: Tessera target.',
      ],
      anchor: 'start',
      fontSize: 16,
      subtitleFontSize: 12,
      offset: 12,
    },
    config: {
      font: 'DejaVu Sans, Arial, sans-serif',
      axis: { labelFontSize: 12, titleFontSize: 12 },
      header: { labelFontSize: 14, labelFontWeight: 'bold' },
      legend: { labelFontSize: 12 },
      view: { stroke: '#ddd' },
    },
    data: { values },
    facet: { column: { field: 'scenario', type: 'nominal', sort: SCENARIOS.map((s) => s.label), title: null } },
    spec: {
      width: 190,
      height: { step: 22 },
      layer: [
        {
          mark: { type: 'bar', height: { band: 0.7 } },
          encoding: {
            y,
            x,
            color: {
              field: 'family',
              type: 'nominal',
              scale: { domain: families, range: families.map((f) => COLORS[f]) },
              legend: { title: null, orient: 'bottom', direction: 'horizontal' },
            },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3, fontSize: 11 },
          encoding: { y, x, text: { field: 'ratio', type: 'quantitative', format: '.2f' } },
        },
        {
          transform: [{ filter: 'datum.target != null' }],
          mark: { type: 'tick', color: 'black', thickness: 2, bandSize: 16 },
          encoding: { y, x: { field: 'target', type: 'quantitative' } },
        },
        { mark: { type: 'rule', strokeDash: [4, 3], color: '#444' }, encoding: { x: { datum: 1 } } },
      ],
    },
  };
}

/** Renders the chart to an SVG string. */
export async function renderChart(results: BenchResults): Promise<string> {
  const vegaLite = await load<VegaLite>('vega-lite');
  const vega = await load<Vega>('vega');
  const view = new vega.View(vega.parse(vegaLite.compile(chartSpec(results)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
