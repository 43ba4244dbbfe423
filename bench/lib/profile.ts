/** Reads a V8 `.cpuprofile` (node --cpu-prof) and names where the time went. */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  name: string;
  /** Percent of all sampled time. */
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Percent of the time the thread was idle (waiting for I/O); the other percentages leave it out. */
  idlePercent: number;
  /** Where samples were taken, by self time. */
  self: Frame[];
  /** Functions of src/ by inclusive time (themselves and what they called). */
  tessera: Frame[];
  /** Self time by area: a package in node_modules, src/, node internals, GC, idle. */
  areas: Frame[];
}

function where(url: string): string {
  if (url === '') return '';
  // Compiled servers (lib/compile.ts) live in node_modules/.cache/tessera-bench/<pid>/.
  const path = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\/\.cache\/tessera-bench\/\d+\//, '/');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length);
  const src = path.lastIndexOf('/src/');
  if (src >= 0) return path.slice(src + 1);
  const bench = path.lastIndexOf('/bench/');
  if (bench >= 0) return path.slice(bench + 1);
  return path;
}

function area(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const path = where(url);
  if (url.startsWith('node:')) return 'node internals';
  if (path.startsWith('src/')) return 'tessera src/';
  if (path.startsWith('bench/')) return 'bench server';
  const parts = path.split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  // Code loaded through tsx reports line 0 for every function: leave the line out then.
  return url ? `${name} ${where(url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : name;
}

/** Samples taken while the profiler itself was stopping (bench/servers/profiling.ts) are not the server's work. */
function profilerNodes(profile: CpuProfile): Set<number> {
  const own = new Set<number>();
  const visit = (node: ProfileNode, inside: boolean) => {
    const here = inside || /\/bench\/servers\/profiling\.[jt]s$/.test(node.callFrame.url);
    if (here) own.add(node.id);
    for (const child of node.children ?? []) visit(byIdOf(profile).get(child) as ProfileNode, here);
  };
  const root = profile.nodes[0];
  if (root) visit(root, false);
  return own;
}

const byIdCache = new WeakMap<CpuProfile, Map<number, ProfileNode>>();
function byIdOf(profile: CpuProfile): Map<number, ProfileNode> {
  let map = byIdCache.get(profile);
  if (!map) byIdCache.set(profile, (map = new Map(profile.nodes.map((node) => [node.id, node]))));
  return map;
}

function top(map: Map<string, number>, total: number, count: number): Frame[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, time]) => ({ name, percent: (time / total) * 100 }));
}

export async function summarizeProfile(file: string, count = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = byIdOf(profile);
  const skip = profilerNodes(profile);
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(profile.timeDeltas[i] ?? 0, 0);
    const node = byId.get(id);
    if (!node || skip.has(id)) return;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    total += dt;
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    const a = area(node.callFrame.url, node.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at) as ProfileNode;
      if (!where(frame.callFrame.url).startsWith('src/')) continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  });
  return {
    totalMs: (total + idle) / 1000,
    idlePercent: (idle / Math.max(total + idle, 1)) * 100,
    self: top(self, total, count),
    tessera: top(inclusive, total, count),
    areas: top(areas, total, count),
  };
}

/**
 * Who calls the frames named `name` (self time of those frames, by the chain of `depth` callers
 * above them), for a frame that is hot but says nothing by itself (`nextTick`, `digest`).
 */
export async function callersOf(file: string, name: string, depth = 4, count = 15): Promise<Frame[]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = byIdOf(profile);
  const skip = profilerNodes(profile);
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const chains = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(profile.timeDeltas[i] ?? 0, 0);
    const node = byId.get(id);
    if (!node || skip.has(id) || node.callFrame.functionName === '(idle)') return;
    busy += dt;
    if (node.callFrame.functionName !== name) return;
    const chain: string[] = [];
    for (let at = parent.get(id); at !== undefined && chain.length < depth; at = parent.get(at)) {
      chain.push(label(byId.get(at) as ProfileNode));
    }
    const key = chain.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + dt);
  });
  return top(chains, Math.max(busy, 1), count);
}

export function formatSummary(file: string, summary: ProfileSummary): string {
  const list = (frames: Frame[]) => frames.map((f) => `  ${f.percent.toFixed(1).padStart(5)}%  ${f.name}`).join('\n');
  return [
    `${file}: ${Math.round(summary.totalMs)} ms sampled, ${summary.idlePercent.toFixed(1)}% idle; percentages of the busy time`,
    'self time by area:',
    list(summary.areas),
    'top frames by self time:',
    list(summary.self),
    'Tessera functions by inclusive time:',
    list(summary.tessera),
  ].join('\n');
}
