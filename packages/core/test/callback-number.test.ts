import { describe, expect, it } from 'vitest';
import { parseCallbackNumber } from '../src/cases/callback-number.ts';

const EXAMPLE = '(e.g. 07911 123456 or 0113 496 0000)';

describe('call-back numbers: UK numbers checked against the numbering plan', () => {
  it.each([
    ['07911 123456', '07911 123456', '+447911123456'],
    ['07911123456', '07911 123456', '+447911123456'],
    ['07911-123-456', '07911 123456', '+447911123456'],
    ['+44 7911 123456', '07911 123456', '+447911123456'],
    ['00447911123456', '07911 123456', '+447911123456'],
    ['0113 496 0123', '0113 496 0123', '+441134960123'],
    ['(0113) 4960123', '0113 496 0123', '+441134960123'],
    ['+44 (0)113 496 0123', '0113 496 0123', '+441134960123'],
    ['020 7946 0000', '020 7946 0000', '+442079460000'],
    ['0800 123 4567', '0800 123 4567', '+448001234567'],
    // A visitor's own mobile, written with its country code, in the international format.
    ['+33 6 12 34 56 78', '+33 6 12 34 56 78', '+33612345678'],
    ['0033612345678', '+33 6 12 34 56 78', '+33612345678'],
  ])('%j is accepted and stored as %j', (typed, national, e164) => {
    expect(parseCallbackNumber(typed)).toEqual({ ok: true, national, e164 });
  });

  it.each([
    // The numbers the old hand-written pattern let through.
    ['123456', `is too short for a UK telephone number: a digit may be missing ${EXAMPLE}`],
    ['079111234567', `is too long for a UK telephone number: a digit may be repeated ${EXAMPLE}`],
    ['0791112345', `is not a UK telephone number in use: check each digit with the caller ${EXAMPLE}`],
    ['+33 6 12 34', 'is not a number in use in the country of +33: check each digit with the caller'],
    ['07911 12345a', `must be digits only (spaces are fine), e.g. 07911 123456 or 0113 496 0000`],
    ['O7911 123456', `must be digits only (spaces are fine), e.g. 07911 123456 or 0113 496 0000`],
    ['999', `is too short for a UK telephone number: a digit may be missing ${EXAMPLE}`],
    ['', `is required ${EXAMPLE}`],
  ])('%j is refused: %s', (typed, message) => {
    expect(parseCallbackNumber(typed)).toEqual({ ok: false, message });
  });
});
