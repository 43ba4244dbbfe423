import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionError } from '../../src/core/errors.ts';
import { describeError, reportError, setReportWriter } from '../../src/core/report.ts';

describe('reportError', () => {
  it('prints one line per error, never an object dump, and folds repeats', () => {
    const lines: string[] = [];
    const previous = setReportWriter((line) => lines.push(line));
    try {
      // A driver error carrying its client, as pg's do: none of it may reach the line.
      const cause = Object.assign(new Error('Connection terminated\nunexpectedly'), {
        client: { processID: 4242, secretKey: 987654, password: 'hunter2' },
      });
      const error = new SessionError('STORE_UNAVAILABLE', 'idle connection failed', { scope: 'sql', cause });
      for (let i = 0; i < 50; i++) reportError(error, 'sql');
      reportError(new Error('something else'), 'sql');
      assert.deepEqual(lines, [
        '[tessera] [sql] idle connection failed (STORE_UNAVAILABLE): Connection terminated unexpectedly',
        '[tessera] [sql] Error: something else',
      ]);
      assert.ok(describeError(`x${'y'.repeat(1000)}`).length <= 400);
    } finally {
      setReportWriter(previous);
    }
  });
});
