import type { Permission } from '@holdfast/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Session } from '../auth/sessions.ts';
import type { UserRecord } from '../accounts/projection.ts';
import type { RequestContext } from './context.ts';

/**
 * Who may call a route. Every route declares exactly one:
 * - `public`: no session (sign-in, health).
 * - `second-factor`: a session past the password step but not yet the second factor.
 * - a permission from the permission table: a full session whose roles carry it.
 */
export type RouteAccess = { public: true } | { secondFactor: true } | { permission: Permission };

export interface RouteInput<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface AuthedInput<B, Q, P> extends RouteInput<B, Q, P> {
  ctx: RequestContext;
  session: Session;
  user: UserRecord;
}

type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

interface BaseRoute<B extends Schema, Q extends Schema, P extends Schema> {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  body?: B;
  query?: Q;
  params?: P;
  /** A larger request body limit than the app's (bytes, after decompression): node-to-node sync only. */
  bodyLimit?: number;
  /** A live stream (server-sent events): counted against the stream limits, not the request limits. */
  stream?: boolean;
  /** A search (it scans): counted against the searches-per-user limit too (fair-use.ts). */
  search?: boolean;
}

export type PublicRouteSpec<B extends Schema, Q extends Schema, P extends Schema> = BaseRoute<B, Q, P> & {
  access: { public: true };
  handler(input: RouteInput<Out<B>, Out<Q>, Out<P>>): Promise<unknown>;
};

export type AuthedRouteSpec<B extends Schema, Q extends Schema, P extends Schema> = BaseRoute<B, Q, P> & {
  access: { secondFactor: true } | { permission: Permission };
  handler(input: AuthedInput<Out<B>, Out<Q>, Out<P>>): Promise<unknown>;
};

/** A route as the registry holds it, its handler's types erased. */
export interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  access: RouteAccess;
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  bodyLimit?: number;
  stream?: boolean;
  search?: boolean;
  handler(
    input: AuthedInput<unknown, unknown, unknown> | RouteInput<unknown, unknown, unknown>,
  ): Promise<unknown>;
}

export function publicRoute<
  B extends Schema = undefined,
  Q extends Schema = undefined,
  P extends Schema = undefined,
>(spec: PublicRouteSpec<B, Q, P>): RouteSpec {
  return spec as unknown as RouteSpec;
}

export function authedRoute<
  B extends Schema = undefined,
  Q extends Schema = undefined,
  P extends Schema = undefined,
>(spec: AuthedRouteSpec<B, Q, P>): RouteSpec {
  return spec as unknown as RouteSpec;
}
