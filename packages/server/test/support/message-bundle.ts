import { nameBasedUuid } from '../../src/node/ids.ts';

/** The smallest message Bundle that passes the outgoing validator: a header and what it is about. */
export function messageBundle(messageId: string, options: { encounterStatus?: string | null } = {}) {
  // Derived from the message id, so the same message always has the same Bundle.
  const focusId = nameBasedUuid(`${messageId}/focus`);
  const status = options.encounterStatus === undefined ? 'finished' : options.encounterStatus;
  return {
    resourceType: 'Bundle',
    id: messageId,
    type: 'message',
    timestamp: '2026-12-04T12:00:00Z',
    entry: [
      {
        fullUrl: `urn:uuid:${messageId}`,
        resource: {
          resourceType: 'MessageHeader',
          id: messageId,
          eventCoding: { system: 'https://example.org/message-event', code: 'test' },
          source: { endpoint: 'urn:holdfast:test' },
          focus: [{ reference: `urn:uuid:${focusId}` }],
        },
      },
      {
        fullUrl: `urn:uuid:${focusId}`,
        resource: {
          resourceType: 'Encounter',
          id: focusId,
          ...(status === null ? {} : { status }),
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' },
        },
      },
    ],
  };
}
