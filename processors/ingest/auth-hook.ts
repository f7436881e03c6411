/**
 * Authentication of the write routes as a fastify `preHandler`: it runs
 * after the body is read (so a body over the limit is 413 whoever sends it,
 * as before) and before the route decodes anything.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { type ApiKey, authenticate, type Scope } from "./auth.ts";
import { fail } from "./errors.ts";

/** 401 without a known key, 403 without `scope`; "disabled" lets everything through (local development). */
export function requireScope(keys: readonly ApiKey[] | "disabled", scope: Scope) {
  // An async hook stops the request by returning the reply it sent.
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (keys === "disabled") return undefined;
    const r = authenticate(keys, req.headers, scope);
    return r.ok
      ? undefined
      : fail(reply, r.status, r.status === 401 ? "unauthorized" : "forbidden", r.message);
  };
}
