// The README's patterns in a user project with `strict`, `exactOptionalPropertyTypes` and
// `noUncheckedIndexedAccess`, against the built declarations (`tessera/...`, after `npm run
// build`): values from process.env are `string | undefined`, and pasting them compiles. They are
// checked at runtime instead, with an INVALID_OPTIONS error naming the unset variable.
import { SessionEngine } from 'tessera';
import { ElasticsearchStore } from 'tessera/elasticsearch';
import { memoryStore } from 'tessera/memory';
import { redisStore } from 'tessera/redis';
import { SqlStore } from 'tessera/sql';

export const engine = new SessionEngine({ store: memoryStore(), secrets: [process.env.SESSION_SECRET] });
export const single = new SessionEngine({ store: memoryStore(), secrets: process.env.SESSION_SECRET });
export const redis = redisStore({ url: process.env.REDIS_URL });
export const sql = new SqlStore({ url: process.env.DATABASE_URL });
export const elasticsearch = new ElasticsearchStore({ node: process.env.ELASTICSEARCH_URL });
