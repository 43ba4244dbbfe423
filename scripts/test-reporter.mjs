// A compact reporter for node's test runner (`--test-reporter=./scripts/test-reporter.mjs`):
// one line per test file (counts and time), every failure in full (its test path, the error and
// its stack, the output of the file that failed), anything a test printed shown under its file,
// then node's own summary (`# tests N`, `# pass N`...) and a closing `N passed, N failed` line
// (also appended as JSON to $TESSERA_TEST_TOTALS when set, for scripts/test.sh's grand total).
import { appendFileSync } from 'node:fs';
import { inspect } from 'node:util';

const relative = (file) => (file ? file.replace(`${process.cwd()}/`, '') : '(no file)');

export default async function* compact(source) {
  const failures = [];
  const output = [];
  const summary = [];
  const paths = new Map(); // file -> names of the tests open in it, by nesting (files run in parallel)
  const groups = new Map(); // file and top-level test or suite -> its counts
  // Node may announce a top-level suite twice (when declared and when it runs): count from the first.
  const groupOf = (file, name) => {
    const key = `${file}\0${name}`;
    if (!groups.has(key)) groups.set(key, { passed: 0, failed: 0, skipped: 0, todo: 0 });
    return groups.get(key);
  };
  const totals = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  const fail = (data, path) =>
    failures.push({ file: relative(data.file), name: trail(path, data), error: data.details?.error });

  // Tests declared outside a test file (the conformance suite in src/testing) are reported with that
  // file: they belong to the test file whose top-level suite is open (the latest, if two files run).
  const open = [];
  const ownerOf = (data) => {
    if (data.nesting === 0 || /\.test\.[cm]?[jt]s$/.test(data.file ?? '')) return data.file;
    return open.at(-1) ?? data.file;
  };

  for await (const event of source) {
    const data = event.data && 'nesting' in event.data ? { ...event.data, file: ownerOf(event.data) } : event.data;
    if (event.type === 'test:start' && data.nesting === 0 && !open.includes(data.file)) open.push(data.file);
    if ((event.type === 'test:pass' || event.type === 'test:fail') && data.nesting === 0) {
      open.splice(open.indexOf(data.file), 1);
    }
    switch (event.type) {
      case 'test:start': {
        const path = paths.get(data.file) ?? [];
        path[data.nesting] = data.name;
        path.length = data.nesting + 1;
        paths.set(data.file, path);
        if (data.nesting === 0) groupOf(data.file, data.name);
        break;
      }
      case 'test:pass':
      case 'test:fail': {
        const path = paths.get(data.file) ?? [];
        const group = groupOf(data.file, data.nesting === 0 ? data.name : path[0]);
        const isSuite = data.details?.type === 'suite';
        // A file that crashed or did not load is reported as one test named after the file.
        const outcome = isSuite ? null : kind(event.type, data);
        if (outcome) {
          group[outcome] += 1;
          totals[outcome] += 1;
          if (outcome === 'failed') fail(data, path);
        } else if (event.type === 'test:fail' && data.details?.error?.failureType !== 'subtestsFailed') {
          fail(data, path); // a suite's own hook failed
          group.failed += 1;
          totals.failed += 1;
        }
        if (data.nesting === 0 && isSuite && typeof data.skip === 'string') {
          yield `skip ${relative(data.file)} > ${data.name} (skipped: ${data.skip})\n`;
        } else if (data.nesting === 0) {
          yield line(relative(data.file), data.name, group, data.details?.duration_ms ?? 0);
        }
        break;
      }
      case 'test:stdout':
      case 'test:stderr':
        output.push(`${relative(data.file)}: ${data.message.trimEnd()}`);
        break;
      case 'test:diagnostic':
        if (data.nesting === 0 && /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /.test(data.message)) {
          summary.push(`# ${data.message}`);
        }
        break;
      default:
        break;
    }
  }

  if (output.length > 0) {
    yield `\nPrinted by the tests (${output.length} line(s)):\n`;
    for (const text of output) yield `  ${text}\n`;
  }
  for (const failure of failures) {
    yield `\nFAILED ${failure.file} > ${failure.name}\n${indent(describe(failure.error))}\n`;
  }
  yield `\n${summary.join('\n')}\n`;
  yield `${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped, ${totals.todo} todo\n`;
  // scripts/test.sh adds up the runs it makes (the main suite, the docs) for one closing line.
  if (process.env.TESSERA_TEST_TOTALS) appendFileSync(process.env.TESSERA_TEST_TOTALS, `${JSON.stringify(totals)}\n`);
}

function kind(type, data) {
  if (data.todo !== undefined && data.todo !== false) return 'todo';
  if (data.skip !== undefined && data.skip !== false) return 'skipped';
  return type === 'test:pass' ? 'passed' : 'failed';
}

function line(file, name, counts, ms) {
  const parts = [`${counts.passed} passed`];
  if (counts.failed) parts.push(`${counts.failed} FAILED`);
  if (counts.skipped) parts.push(`${counts.skipped} skipped`);
  if (counts.todo) parts.push(`${counts.todo} todo`);
  const label = relative(name) === file ? file : `${file} > ${name}`;
  return `${counts.failed ? 'FAIL' : 'ok  '} ${label} (${parts.join(', ')}; ${(ms / 1000).toFixed(1)} s)\n`;
}

function trail(path, data) {
  if (data.nesting === 0 && relative(data.name) === relative(data.file))
    return '(the file crashed or did not load; its output is above)';
  return [...path.slice(1, data.nesting), data.name].join(' > ');
}

function describe(error) {
  if (!error) return '(no error given)';
  const inner = error.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error;
  return inspect(inner, { depth: 4, breakLength: 110 });
}

function indent(text) {
  return text
    .split('\n')
    .map((row) => `    ${row}`)
    .join('\n');
}
