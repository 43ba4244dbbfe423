import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSessionError } from '../../src/core/errors.ts';
import { ElasticsearchStore } from '../../src/stores/elasticsearch/index.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';

// What `{ url: process.env.REDIS_URL }` gives when the variable is not set.
const env: Record<string, string | undefined> = {};
const namesTheCause = (e: unknown) =>
  isSessionError(e, 'INVALID_OPTIONS') && /is undefined: is the environment variable/.test((e as Error).message);

describe('a connection string that is explicitly undefined (an unset environment variable)', () => {
  it('is INVALID_OPTIONS for the Redis store, not a silent 127.0.0.1:6379', () => {
    assert.throws(() => new RedisStore({ url: env.REDIS_URL }), namesTheCause);
  });

  it('is INVALID_OPTIONS naming the cause for the SQL store', () => {
    assert.throws(() => new SqlStore({ url: env.DATABASE_URL }), namesTheCause);
  });

  it('is INVALID_OPTIONS for the Elasticsearch store, not a silent localhost:9200', () => {
    assert.throws(() => new ElasticsearchStore({ node: env.ELASTICSEARCH_URL }), namesTheCause);
  });

  it('leaving the option out is still the documented default', async () => {
    const store = new RedisStore({});
    await store.close();
  });
});
