import pino, { type Logger } from 'pino';

/**
 * Structured logs with patient data kept out by construction: request bodies are never logged,
 * URLs are logged without query strings, and any field that could carry credentials or payloads
 * is redacted wherever it appears.
 */
export const REDACTED_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.payload',
  '*.password',
  '*.token',
  '*.nhsNumber',
  '*.name',
  '*.body',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { service: 'holdfast' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
