// stores: redis
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  type RedisClusterHandle,
  type RedisSentinelHandle,
  type RedisServer,
  redisCommand,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
} from './redis-servers.ts';

const run = promisify(execFile);

/** redis-cli, an independent client, so the helpers are not only checked against their own RESP code. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', args, { timeout: 10_000 });
  return stdout.trim();
}

describe('startRedis', () => {
  const servers: RedisServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('starts a server that answers PING and SET/GET on its own port', async () => {
    const server = await startRedis();
    servers.push(server);
    assert.notEqual(server.port, 6379);
    assert.equal(server.host, '127.0.0.1');
    assert.equal(server.url, `redis://127.0.0.1:${server.port}`);
    const port = String(server.port);
    assert.equal(await cli('-p', port, 'PING'), 'PONG');
    assert.equal(await cli('-p', port, 'SET', 'greeting', 'hello'), 'OK');
    assert.equal(await cli('-p', port, 'GET', 'greeting'), 'hello');
    assert.equal(await redisCommand({ port: server.port }, ['GET', 'greeting']), 'hello');
    assert.equal(await cli('-p', port, 'CONFIG', 'GET', 'appendonly'), 'appendonly\nno');
    assert.equal(await cli('-p', port, 'CONFIG', 'GET', 'save'), 'save');
  });

  it('listens on a unix socket with mode 700 and removes its temp dir on stop', async () => {
    const server = await startRedis({ unixSocket: true });
    servers.push(server);
    const socketPath = server.socketPath;
    assert.ok(socketPath, 'socketPath is set');
    assert.equal(statSync(socketPath).mode & 0o777, 0o700);
    assert.equal(await cli('-s', socketPath, 'SET', 'k', 'v'), 'OK');
    assert.equal(await redisCommand({ path: socketPath }, ['GET', 'k']), 'v');
    await server.stop();
    assert.equal(existsSync(path.dirname(socketPath)), false, 'temp dir removed');
  });

  it('comes back on the same port (and socket) after stop() and after kill()', async () => {
    const server = await startRedis({ unixSocket: true });
    servers.push(server);
    const target = { port: server.port };
    await redisCommand(target, ['SET', 'k', 'before']);

    await server.stop();
    await assert.rejects(redisCommand(target, ['PING']), /ECONNREFUSED/);
    await server.start();
    assert.equal(await redisCommand(target, ['PING']), 'PONG');
    assert.equal(await redisCommand(target, ['GET', 'k']), null, 'no persistence');

    await server.kill();
    await assert.rejects(redisCommand(target, ['PING']), /ECONNREFUSED/);
    await server.start();
    assert.equal(await redisCommand(target, ['PING']), 'PONG');
    assert.equal(await cli('-s', server.socketPath ?? '', 'PING'), 'PONG');
    await server.start(); // no-op while running
  });

  it('requires the password when one is set', async () => {
    const server = await startRedis({ password: 's3cret' });
    servers.push(server);
    assert.equal(server.password, 's3cret');
    await assert.rejects(redisCommand({ port: server.port }, ['GET', 'k']), /NOAUTH/);
    assert.equal(await redisCommand({ port: server.port }, ['PING'], { password: 's3cret' }), 'PONG');
  });

  it('fails fast, naming the port and the server output, when the port is taken', async () => {
    const first = await startRedis();
    servers.push(first);
    const startedAt = Date.now();
    await assert.rejects(startRedis({ port: first.port }), (err: Error) => {
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${first.port}`));
      assert.match(err.message, /Address already in use/);
      return true;
    });
    assert.ok(Date.now() - startedAt < 5000, 'did not wait for the full readiness deadline');
    assert.equal(await redisCommand({ port: first.port }, ['PING']), 'PONG', 'the first server is unharmed');
  });

  it('reports bad arguments with the server output', async () => {
    await assert.rejects(startRedis({ args: ['--no-such-option', 'x'] }), /Bad directive|no-such-option/);
  });
});

describe('startRedisCluster', () => {
  let cluster: RedisClusterHandle | undefined;
  after(async () => {
    await cluster?.stop();
  });

  it('creates a 3-master cluster with every slot assigned', async () => {
    const t0 = Date.now();
    cluster = await startRedisCluster();
    console.log(`cluster ready in ${Date.now() - t0} ms`);
    assert.equal(cluster.nodes.length, 3);
    for (const node of cluster.nodes) {
      const info = await cli('-p', String(node.port), 'CLUSTER', 'INFO');
      assert.match(info, /^cluster_state:ok\r?$/m);
      assert.match(info, /^cluster_slots_assigned:16384\r?$/m);
      assert.match(info, /^cluster_size:3\r?$/m);
    }
    const nodes = await cli('-p', String(cluster.nodes[0]?.port), 'CLUSTER', 'NODES');
    assert.equal(nodes.split('\n').filter((line) => line.includes('master')).length, 3);
    // -c follows MOVED redirects: keys in different slots land on different masters.
    const port = String(cluster.nodes[1]?.port);
    for (const key of ['a', 'b', 'c', 'd']) assert.equal(await cli('-c', '-p', port, 'SET', key, key), 'OK');
    for (const key of ['a', 'b', 'c', 'd']) assert.equal(await cli('-c', '-p', port, 'GET', key), key);
  });

  it('rejects fewer than 3 masters', async () => {
    await assert.rejects(startRedisCluster({ masters: 2 }), RangeError);
  });
});

describe('startRedisSentinel', () => {
  let setup: RedisSentinelHandle | undefined;
  after(async () => {
    await setup?.stop();
  });

  it('starts a master, a replica and 3 sentinels that agree on the master', async () => {
    const t0 = Date.now();
    setup = await startRedisSentinel();
    console.log(`sentinel setup ready in ${Date.now() - t0} ms`);
    const { masterName, master, replica, sentinels } = setup;
    assert.equal(sentinels.length, 3);
    for (const sentinel of sentinels) {
      const addr = await cli('-p', String(sentinel.port), 'SENTINEL', 'get-master-addr-by-name', masterName);
      assert.equal(addr, `127.0.0.1\n${master.port}`);
      const replicas = await cli('-p', String(sentinel.port), 'SENTINEL', 'replicas', masterName);
      assert.match(replicas, new RegExp(`^127\\.0\\.0\\.1:${replica.port}$`, 'm'));
    }
    assert.match(await cli('-p', String(replica.port), 'INFO', 'replication'), /^role:slave\r?$/m);
    await redisCommand({ port: master.port }, ['SET', 'replicated', 'yes']);
    assert.equal(await cli('-p', String(master.port), 'WAIT', '1', '5000'), '1');
    assert.equal(await redisCommand({ port: replica.port }, ['GET', 'replicated']), 'yes');
  });
});
