/**
 * How ingest answers an error: one body shape (`ErrorBody`, in the OpenAPI
 * document as `ErrorSchema`) with a machine-readable code, for its own
 * refusals (`fail`) and for fastify's (body too large, wrong media type ...).
 */
import type { FastifyReply } from "fastify";
import type { App } from "../runtime/server.ts";

export interface ErrorBody {
  error: string;
  message: string;
  details?: { index?: number; message: string }[];
}

/** Answers `status` with an error body. */
export function fail(
  reply: FastifyReply,
  status: number,
  error: string,
  message: string,
  details?: ErrorBody["details"],
): FastifyReply {
  return reply.code(status).send(details ? { error, message, details } : { error, message });
}

/** The code of an HTTP status fastify answered by itself. */
function codeOf(status: number): string {
  if (status === 413) return "payload_too_large";
  if (status === 415) return "unsupported_media_type";
  if (status === 400) return "bad_request";
  if (status === 503) return "unavailable";
  return "internal";
}

/** fastify's own errors as error bodies; a 5xx is logged (a 4xx is the client's). */
export function mapFastifyErrors(app: App): void {
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, "request failed");
    const body: ErrorBody = { error: codeOf(status), message: err.message };
    return reply.code(status).send(body);
  });
}
