// A problem in a configuration file is named by the file and its path in it, whichever section
// and whichever check (the file's own, the store's, the engine's) finds it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig, resolveConfig } from '../../src/config/index.ts';
import { isSessionError } from '../../src/core/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-config-paths-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The message `loadConfig` refuses a file with, checked to be an `INVALID_OPTIONS`. */
async function refusal(name: string, text: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, text);
  const error = await loadConfig(file, env).then(
    () => assert.fail(`${name} was accepted`),
    (e: unknown) => e,
  );
  assert.ok(isSessionError(error, 'INVALID_OPTIONS'), String(error));
  return (error as Error).message;
}

describe('configuration problems named by file and path', () => {
  it('a misspelt key: its path, the likely key and the known ones, in every section', async () => {
    const file = join(dir, 'misspelt.yml');
    assert.equal(
      await refusal('misspelt.yml', 'store:\n  url: redis://127.0.0.1:6379\n  prefx: "app:"\n'),
      `[tessera] [config] ${file}: store.prefx: is not a known option (did you mean "prefix"?); known: ` +
        'url, prefix, userIndexTtlSeconds, debug, durableCommit, tls, client, logger',
    );
    assert.match(
      await refusal('misspelt-session.yml', 'store: "memory:"\nsession:\n  cookie:\n    sameSit: lax\n'),
      /misspelt-session\.yml: session\.cookie\.sameSit: is not a known option \(did you mean "sameSite"\?\)/,
    );
    assert.match(
      await refusal('misspelt-cache.yml', 'store: "memory:"\ncache:\n  maxEntires: 10\n'),
      /misspelt-cache\.yml: cache\.maxEntires: is not a known option \(did you mean "maxEntries"\?\)/,
    );
    assert.match(
      await refusal('misspelt-top.yml', 'stores: "memory:"\n'),
      /misspelt-top\.yml: stores: is not a known option \(did you mean "store"\?\); known: store, session, cache$/,
    );
    assert.match(
      await refusal('misspelt-sql.json', JSON.stringify({ store: { url: 'sqlite::memory:', tabel: 'sessions' } })),
      /misspelt-sql\.json: store\.tabel: is not a known option \(did you mean "table"\?\)/,
    );
  });

  it('a wrong type deep in the file: the whole path, the rule and what it got', async () => {
    assert.match(
      await refusal(
        'deep.yml',
        'store:\n  url: redis://127.0.0.1:6379\n  durableCommit:\n    replicas: two\n    timeoutMs: 50\n',
      ),
      /deep\.yml: store\.durableCommit\.replicas: must be a whole number >= 1, got "two"$/,
    );
    assert.match(
      await refusal('deep-session.yml', 'store: "memory:"\nsession:\n  cookie:\n    sameSite: sometimes\n'),
      /deep-session\.yml: session\.cookie\.sameSite: must be one of 'lax', 'strict', 'none', got "sometimes"$/,
    );
    assert.match(
      await refusal('prefix.yml', 'store:\n  url: redis://127.0.0.1:6379\n  prefix: 42\n'),
      /prefix\.yml: store\.prefix: must be a non-empty string, got 42$/,
    );
    assert.match(
      await refusal('secret.yml', 'store: "memory:"\nsession:\n  secrets: [short]\n'),
      /secret\.yml: session\.secrets\[0\]: must be at least 32 characters, got 5$/,
    );
  });

  it('rules across options, checked by the store or the engine, are named by their path in the file too', async () => {
    assert.match(
      await refusal('same-site.yml', 'store: "memory:"\nsession:\n  cookie:\n    sameSite: none\n    secure: false\n'),
      /same-site\.yml: session\.cookie\.sameSite: 'none' needs cookie\.secure: true/,
    );
    assert.match(
      await refusal(
        'touch.json',
        JSON.stringify({ store: 'memory:', session: { idleTimeoutSeconds: 60, touchAfterSeconds: 90 } }),
      ),
      /touch\.json: session\.touchAfterSeconds: cannot exceed idleTimeoutSeconds$/,
    );
    assert.match(
      await refusal('redis-url.yml', 'store:\n  url: "redis://127.0.0.1:6379?ping=often"\n'),
      /redis-url\.yml: store\.url: "redis:\/\/127\.0\.0\.1:6379\?ping=often": ping must be a number of seconds >= 0/,
    );
    assert.match(
      await refusal('es-url.yml', 'store:\n  url: elasticsearch+https://\n'),
      /es-url\.yml: store\.url: must be an http:\/\/ or https:\/\/ URL/,
    );
    assert.match(
      await refusal('sql-table.yml', 'store:\n  url: "sqlite::memory:"\n  table: "sessions; drop table users"\n'),
      /sql-table\.yml: store\.table: must be "name" or "schema\.name", each an identifier of letters, digits and underscores/,
    );
    assert.match(
      await refusal('sql-columns.yml', 'store:\n  url: "sqlite::memory:"\n  userColumn: Version\n'),
      /sql-columns\.yml: store\.userColumn: "version" is used twice: column names must differ$/,
    );
    assert.match(
      await refusal('sql-schema.yml', 'store:\n  url: "sqlite::memory:"\n  table: main.sessions\n'),
      /sql-schema\.yml: store\.table: cannot be schema-qualified on SQLite, got "main\.sessions"$/,
    );
    assert.match(
      await refusal('cache.yml', 'store: "sqlite::memory:"\ncache:\n  maxEntries: 10\n'),
      /cache\.yml: cache: in front of a non-Redis store needs invalidationUrl/,
    );
  });

  it('an unknown store URL scheme, or kind, without echoing credentials', async () => {
    const scheme = await refusal('scheme.yml', 'store:\n  url: mongodb://admin:hunter2@db.internal/app\n');
    assert.match(
      scheme,
      /scheme\.yml: store\.url: "mongodb:\/\/\*\*\*@db\.internal\/app" is not a store URL \(no known scheme\): use redis:\/\//,
    );
    assert.doesNotMatch(scheme, /hunter2/);
    assert.match(
      await refusal('scheme-string.yml', 'store: "mongodb://db.internal/app"\n'),
      /scheme-string\.yml: store: "mongodb:\/\/db\.internal\/app" is not a store URL/,
    );
    assert.match(
      await refusal('kind.yml', 'store:\n  kind: mongo\n'),
      /kind\.yml: store\.kind: must be one of 'redis', 'sql', 'elasticsearch', 'opensearch', 'memory', got "mongo"$/,
    );
  });

  it('an unset variable is named by the value that uses it', async () => {
    assert.match(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own ${VAR} syntax
      await refusal('unset.yml', 'store: "memory:"\nsession:\n  secrets: ["${SESSION_SECRET}"]\n'),
      /unset\.yml: session\.secrets\[0\]: uses \$\{SESSION_SECRET\}, which is not set in the environment$/,
    );
  });

  it('an object given in code is named by the same paths, without a file', async () => {
    await assert.rejects(resolveConfig({ store: { url: 'redis://127.0.0.1:6379', userIndexTtlSeconds: -1 } }), {
      message: '[tessera] [config] store.userIndexTtlSeconds: must be a positive number of seconds, got -1',
    });
  });
});
