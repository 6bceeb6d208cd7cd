import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { HoldfastNode } from '../node/node.ts';

/**
 * The HTTP face of a node. For now: `/health` for load balancers and operators, and Prometheus
 * `/metrics`. Later modules add their routes under /api/v1.
 */
export async function buildHttpServer(node: HoldfastNode, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Logged request lines carry the route and method only: a query string could hold patient data.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  });

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const appended = new Counter({
    name: 'holdfast_ledger_events_committed_total',
    help: 'Events made durable by this node (appended locally)',
    registers: [metrics],
  });
  const requestDuration = new Histogram({
    name: 'holdfast_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics],
  });
  const tenant = node.identity.tenant;
  new Gauge({
    name: 'holdfast_ledger_head_seq',
    help: "Highest seq of this node's own chain",
    registers: [metrics],
    async collect() {
      this.set((await node.ledger.head(tenant)).seq);
    },
  });
  new Gauge({
    name: 'holdfast_ledger_unsealed_events',
    help: 'Events of this node not yet covered by a signed checkpoint',
    registers: [metrics],
    async collect() {
      const head = await node.ledger.head(tenant);
      this.set(head.seq - head.checkpointedSeq);
    },
  });
  const previous = node.ledger.onCommitted;
  node.ledger.onCommitted = (events) => {
    previous(events);
    appended.inc(events.length);
  };

  app.addHook('onResponse', async (request, reply) => {
    requestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  app.get('/health', async (_request, reply) => {
    try {
      await node.store.ping();
      const head = await node.ledger.head(tenant);
      return {
        status: 'ok',
        node: node.identity.node,
        role: node.identity.role,
        tenant,
        store: node.store.dialect,
        ledger: { seq: head.seq, sealedSeq: head.checkpointedSeq },
      };
    } catch {
      return reply
        .code(503)
        .send({ status: 'unavailable', node: node.identity.node, problem: 'the store does not answer' });
    }
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });

  return app;
}
