// Writes schema/tessera.schema.json, the JSON Schema of a tessera.yml, for editor completion and
// checks (`# yaml-language-server: $schema=./node_modules/tessera/schema/tessera.schema.json`):
// `npm run schema`. It is made from the valibot schemas the library checks a configuration with,
// and each option's description is the TSDoc of the options interface that schema is tied to (by
// `Same`), so neither is written twice. test/config/schema.test.ts fails when the committed file
// is not what this script makes now.
//
// The file is looser than the library in two ways: a value may be `${VAR}` (expanded when the
// file is read), so URLs are any string; and a store block is one of the stores' option sets
// (any of them, as JSON Schema cannot tell the kind from a URL's scheme), where the library
// checks the options of the store its `kind` or URL names.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { toJsonSchema } from '@valibot/to-json-schema';
import ts from 'typescript';
import * as v from 'valibot';
import { cacheConfigSchema } from '../src/config/types.ts';
import { oneOf, text } from '../src/core/check.ts';
import { cookieSchema, sessionFileSchema } from '../src/core/options.ts';
import { elasticsearchFileSchema } from '../src/stores/elasticsearch/options.ts';
import { memoryFileSchema } from '../src/stores/memory.ts';
import { redisFileSchema } from '../src/stores/redis/options.ts';
import { sqlFileSchema } from '../src/stores/sql/options.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA_FILE = path.join(ROOT, 'schema/tessera.schema.json');

/** Each definition is named after the interface whose TSDoc describes its properties. */
const definitions = {
  RedisStoreOptions: v.strictObject({ kind: v.optional(oneOf(['redis'])), ...redisFileSchema.entries }),
  DurableCommit: redisFileSchema.entries.durableCommit.wrapped,
  SqlStoreOptions: v.strictObject({ kind: v.optional(oneOf(['sql'])), ...sqlFileSchema.entries }),
  ElasticsearchStoreOptions: v.strictObject({
    kind: v.optional(oneOf(['elasticsearch', 'opensearch'])),
    url: v.optional(text()),
    ...elasticsearchFileSchema.entries,
  }),
  MemoryStoreOptions: v.strictObject({
    kind: v.optional(oneOf(['memory'])),
    url: v.optional(v.literal('memory:')),
    ...memoryFileSchema.entries,
  }),
  SessionOptions: sessionFileSchema,
  CookieOptions: cookieSchema,
  CacheConfig: cacheConfigSchema,
};

const fileSchema = v.strictObject({
  store: v.union([
    text(),
    definitions.RedisStoreOptions,
    definitions.SqlStoreOptions,
    definitions.ElasticsearchStoreOptions,
    definitions.MemoryStoreOptions,
  ]),
  session: v.optional(sessionFileSchema),
  cache: v.optional(cacheConfigSchema),
});

/** Where the interfaces are, and the interface that describes each part of the file. */
const SOURCES = [
  'src/config/types.ts',
  'src/core/options.ts',
  'src/stores/redis/options.ts',
  'src/stores/sql/options.ts',
  'src/stores/elasticsearch/options.ts',
  'src/stores/memory.ts',
];

type Docs = Map<string, { text: string; properties: Map<string, string> }>;

/** A TSDoc comment as plain text: `{@link X}` as `X`, and its `@default` as a last line. */
function plain(node: ts.Node): string {
  const parts: string[] = [];
  for (const doc of ts.getJSDocCommentsAndTags(node)) {
    if (!ts.isJSDoc(doc)) continue;
    const comment = ts.getTextOfJSDocComment(doc.comment);
    if (comment) parts.push(comment);
    for (const tag of doc.tags ?? []) {
      const value = ts.getTextOfJSDocComment(tag.comment);
      if (tag.tagName.text === 'default' && value) parts.push(`Default: ${value}`);
    }
  }
  // TSDoc is wrapped for the source; an editor wraps a description itself (list items stay lines).
  return parts
    .join('\n\n')
    .replace(/([^\n])\n(?![\n-]|\s+-)\s*/g, '$1 ')
    .replace(/\{@link\s+([^}\s|]+)(?:\s*\|\s*([^}]+))?\}/g, (_, target: string, label?: string) => label ?? target)
    .trim();
}

/** Every interface of the sources, with the TSDoc of it and of its properties. */
function readDocs(): Docs {
  const docs: Docs = new Map();
  for (const file of SOURCES) {
    const source = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const statement of source.statements) {
      if (!ts.isInterfaceDeclaration(statement)) continue;
      const properties = new Map<string, string>();
      for (const member of statement.members) {
        if (ts.isPropertySignature(member) && ts.isIdentifier(member.name)) {
          properties.set(member.name.text, plain(member));
        }
      }
      docs.set(statement.name.text, { text: plain(statement), properties });
    }
  }
  return docs;
}

interface Node {
  description?: string;
  properties?: Record<string, Node>;
  [keyword: string]: unknown;
}

/** Gives the object and each property the description its interface's TSDoc has (or `fallback`'s). */
function describe(node: Node, docs: Docs, name: string, fallback = 'StoreConfig'): void {
  const own = docs.get(name);
  if (!own) throw new Error(`scripts/schema.ts: no interface ${name} in ${SOURCES.join(', ')}`);
  if (own.text && node.description === undefined) node.description = own.text;
  for (const [key, property] of Object.entries(node.properties ?? {})) {
    const text = own.properties.get(key) || docs.get(fallback)?.properties.get(key);
    if (text && property.description === undefined) property.description = text;
  }
}

/** The JSON Schema of a tessera.yml. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(fileSchema, {
    definitions,
    // Rules only code can check (a URL that parses, an index name Elasticsearch takes) stay the
    // library's; a JSON or YAML number is finite anyway.
    ignoreActions: ['check', 'finite'],
    overrideSchema: ({ valibotSchema }) =>
      // `record()` options (Elasticsearch clientOptions): passed to the client as they are.
      valibotSchema.type === 'custom' ? { type: 'object' } : undefined,
  }) as Node & { $defs?: Record<string, Node>; definitions?: Record<string, Node> };
  const docs = readDocs();
  describe(schema, docs, 'TesseraConfig');
  const defs = schema.$defs ?? schema.definitions ?? {};
  for (const [name, node] of Object.entries(defs)) describe(node, docs, name);
  return {
    $schema: schema.$schema,
    $id: 'https://unpkg.com/tessera/schema/tessera.schema.json',
    title: 'tessera.yml',
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
  };
}

/** The file's text: what `npm run schema` writes. */
export function schemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  writeFileSync(SCHEMA_FILE, schemaText());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
