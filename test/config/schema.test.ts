// schema/tessera.schema.json: what scripts/schema.ts makes now, and true to the files we show.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { blocksOf, pages } from '../../scripts/docs-test.ts';
import { SCHEMA_FILE, schemaText } from '../../scripts/schema.ts';

const MODELINE = '# yaml-language-server: $schema=./node_modules/tessera/schema/tessera.schema.json';
const committed = readFileSync(SCHEMA_FILE, 'utf8');
const validate = new Ajv({ allErrors: true }).compile(JSON.parse(committed));

/** Ajv's complaints about a parsed file, one line each; empty when it is valid. */
function problems(config: unknown): string[] {
  if (validate(config)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

/** Every tessera.yml the docs show: the `yaml` blocks whose first line names the file. */
const examples = pages().flatMap((page) =>
  blocksOf(page).filter((block) => block.lang === 'yaml' && block.code.startsWith('# tessera.yml')),
);

describe('the JSON Schema of tessera.yml', () => {
  it('is what `npm run schema` makes from the valibot schemas and the TSDoc now', () => {
    assert.ok(committed === schemaText(), 'schema/tessera.schema.json is out of date: run `npm run schema`');
  });

  it('carries the TSDoc of the options over as descriptions', () => {
    const schema = JSON.parse(committed);
    const prefix = schema.$defs.RedisStoreOptions.properties.prefix;
    assert.match(prefix.description, /^Prefix of every key the store writes/);
    assert.match(prefix.description, /Default: 'tessera:'$/);
    assert.match(schema.$defs.CookieOptions.properties.sameSite.description, /Default: 'lax'/);
    assert.deepEqual(schema.$defs.CookieOptions.properties.sameSite.enum, ['lax', 'strict', 'none']);
  });

  it('accepts test/fixtures/tessera.yml, which names it', () => {
    const text = readFileSync(new URL('../fixtures/tessera.yml', import.meta.url), 'utf8');
    assert.ok(text.includes(MODELINE));
    assert.deepEqual(problems(parse(text)), []);
  });

  it('accepts the docs’ tessera.yml examples, which name it', () => {
    assert.ok(examples.length > 0, 'no `# tessera.yml` yaml block in the docs');
    for (const block of examples) {
      const where = `${block.page}:${block.line}`;
      assert.ok(block.code.includes(MODELINE), `${where} lacks the yaml-language-server line`);
      assert.deepEqual(problems(parse(block.code)), [], where);
    }
  });

  it('refuses what the library refuses: a misspelt key, a wrong type, an unknown store option', () => {
    const good = { store: { url: 'redis://127.0.0.1:6379', prefix: 'app:' }, session: { idleTimeoutSeconds: 60 } };
    assert.deepEqual(problems(good), []);
    assert.notDeepEqual(problems({ ...good, sesion: {} }), []);
    assert.notDeepEqual(problems({ ...good, session: { cookie: { sameSite: 'sometimes' } } }), []);
    assert.notDeepEqual(problems({ ...good, session: { idleTimeoutSeconds: '60' } }), []);
    assert.notDeepEqual(problems({ store: { url: 'redis://127.0.0.1:6379', prefx: 'app:' } }), []);
    assert.notDeepEqual(problems({ store: { kind: 'memory', maxEntries: 0 } }), []);
    assert.notDeepEqual(problems({ session: {} }), [], 'store is required');
  });
});
