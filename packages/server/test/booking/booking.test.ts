import { formatLocal } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { BookingWorld, type AppointmentJson, type SlotJson } from './support.ts';

/**
 * Treatment-centre appointments end to end through the HTTP API on both stores: diaries and slots,
 * booking from a disposition with the address and time in the answer, the timeframe rule, rebook and
 * cancel with reasons, the ownership rule (allocation, 409 naming the owner, the cut-off return),
 * reception (no clinical notes), arrival into the clinicians' queue, walk-ins, and the case closing
 * after the consultation at the centre.
 */
describe.each(STORE_KINDS)('treatment-centre appointments on %s', (kind) => {
  const w = new BookingWorld();
  // The test clock starts 2026-11-29 09:00 UTC (GMT): a 4-hour disposition runs to 13:00.
  const DAY = '2026-11-29';
  beforeAll(async () => {
    await w.start(kind);
    await w.centre('north-tc', { rooms: 2 });
  });
  afterAll(async () => {
    await w.stop();
  });

  it('plans a session into local-time slots owned by the home node; bad input names the field', async () => {
    const slots = await w.session('north-tc', DAY, '10:00', '11:00');
    expect(slots.map((s) => s.startLocal)).toEqual([
      `${DAY} 10:00`,
      `${DAY} 10:15`,
      `${DAY} 10:30`,
      `${DAY} 10:45`,
    ]);
    expect(slots.every((s) => s.ownerNodeId === w.nodeId && s.bookableHere && s.free === 1)).toBe(true);
    const bad = await w.clients.manager.request('POST', '/api/v1/centres/north-tc/sessions', {
      templateId: 'urgent',
      roomId: 'room-9',
      clinicianName: 'Dr X',
      date: DAY,
      startLocal: '10:00',
      endLocal: '11:00',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toBe('body.roomId');
    const badTime = await w.clients.manager.request('POST', '/api/v1/centres/north-tc/sessions', {
      templateId: 'urgent',
      roomId: 'room-1',
      clinicianName: 'Dr X',
      date: DAY,
      startLocal: '25:00',
      endLocal: '11:00',
    });
    expect(badTime.statusCode).toBe(400);
    expect(badTime.json().errors[0].path).toBe('body.startLocal');
    // An adviser may not plan sessions.
    expect(
      (
        await w.clients.adviser.request('POST', '/api/v1/centres/north-tc/sessions', {
          templateId: 'urgent',
          roomId: 'room-1',
          clinicianName: 'Dr X',
          date: DAY,
          startLocal: '10:00',
          endLocal: '11:00',
        })
      ).statusCode,
    ).toBe(403);
  });

  it('books from a disposition: the answer carries the address and time; a full slot is 409 slot_full; the case record and PEM line show it', async () => {
    const [slot] = await w.session('north-tc', DAY, '11:00', '11:30', 'room-2');
    const caseId = await w.utcCase();
    const options = await w.json<{
      timeframeMinutes: number;
      options: {
        slot: SlotJson;
        withinTimeframe: boolean;
        bookableHere: boolean;
        centre: { name: string };
      }[];
    }>(w.clients.adviser, 'GET', `/api/v1/cases/${caseId}/appointment-options?limit=50`);
    expect(options.timeframeMinutes).toBe(240);
    expect(
      options.options.some((o) => o.slot.slotId === slot!.slotId && o.withinTimeframe && o.bookableHere),
    ).toBe(true);
    const r = await w.book(w.clients.adviser, caseId, slot!.slotId);
    expect(r.statusCode, r.body).toBe(201);
    const appointment = (r.json() as { appointment: AppointmentJson }).appointment;
    expect(appointment).toMatchObject({
      centreName: 'Centre north-tc',
      address: '1 High Street, Northtown',
      postcode: 'NS1 1AA',
      startLocal: `${DAY} 11:00`,
      state: 'booked',
    });
    const second = await w.book(w.clients.adviser2, await w.utcCase(w.clients.adviser2), slot!.slotId);
    expect(second.statusCode).toBe(409);
    expect(second.json().code).toBe('slot_full');
    const list = await w.json<{ appointments: AppointmentJson[] }>(
      w.clients.adviser,
      'GET',
      `/api/v1/cases/${caseId}/appointments`,
    );
    expect(list.appointments.map((a) => a.bookingId)).toEqual([appointment.bookingId]);
    const record = await w.json<{ record: { timeline: { text?: string; type?: string }[] } }>(
      w.clients.clinician,
      'GET',
      `/api/v1/cases/${caseId}`,
    );
    expect(JSON.stringify(record.record.timeline)).toContain(
      `Appointment booked for ${DAY} 11:00 at centre north-tc`,
    );
    // The PEM's "Appointment:" line (Follow-up section) reads these lines.
    expect(await w.t.booking.pemLines('northshire', caseId)).toEqual([
      `Urgent face to face at Centre north-tc, 1 High Street, Northtown, NS1 1AA on ${DAY} 11:00`,
    ]);
  });

  it('outside the timeframe: an adviser is refused naming outsideTimeframeReason; a clinician books with a reason', async () => {
    const [late] = await w.session('north-tc', DAY, '15:00', '15:15');
    const caseId = await w.utcCase();
    const byAdviser = await w.book(w.clients.adviser, caseId, late!.slotId, {
      outsideTimeframeReason: 'Patient cannot travel before then',
    });
    expect(byAdviser.statusCode).toBe(400);
    expect(byAdviser.json().errors[0].path).toBe('body.outsideTimeframeReason');
    const noReason = await w.book(w.clients.clinician, caseId, late!.slotId);
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().errors[0].path).toBe('body.outsideTimeframeReason');
    const ok = await w.book(w.clients.clinician, caseId, late!.slotId, {
      outsideTimeframeReason: 'Wound check can safely wait; patient cannot travel sooner',
    });
    expect(ok.statusCode, ok.body).toBe(201);
    expect((ok.json() as { appointment: AppointmentJson }).appointment.outsideTimeframeReason).toMatch(
      /Wound/,
    );
  });

  it('rebook and cancel carry reasons; the freed place can be booked again; blocked slots are refused', async () => {
    const slots = await w.session('north-tc', DAY, '12:00', '12:30', 'room-2');
    const caseId = await w.utcCase();
    const first = (
      await w.json<{ appointment: AppointmentJson }>(
        w.clients.adviser,
        'POST',
        `/api/v1/cases/${caseId}/appointments`,
        {
          slotId: slots[0]!.slotId,
        },
      )
    ).appointment;
    const noReason = await w.clients.adviser.request(
      'POST',
      `/api/v1/appointments/${first.bookingId}/rebook`,
      {
        slotId: slots[1]!.slotId,
      },
    );
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().errors[0].path).toBe('body.reason');
    const moved = (
      await w.json<{ appointment: AppointmentJson }>(
        w.clients.adviser,
        'POST',
        `/api/v1/appointments/${first.bookingId}/rebook`,
        { slotId: slots[1]!.slotId, reason: 'Patient asked for later' },
      )
    ).appointment;
    expect(moved.slotId).toBe(slots[1]!.slotId);
    const all = await w.json<{ appointments: AppointmentJson[] }>(
      w.clients.adviser,
      'GET',
      `/api/v1/cases/${caseId}/appointments`,
    );
    expect(all.appointments.find((a) => a.bookingId === first.bookingId)).toMatchObject({
      state: 'cancelled',
      cancelReason: 'Patient asked for later',
    });
    const cancelled = await w.json<{ appointment: AppointmentJson }>(
      w.clients.adviser,
      'POST',
      `/api/v1/appointments/${moved.bookingId}/cancel`,
      { reason: 'Feeling better' },
    );
    expect(cancelled.appointment.state).toBe('cancelled');
    // Both places are free again.
    const diary = await w.json<{ slots: SlotJson[] }>(
      w.clients.adviser,
      'GET',
      `/api/v1/centres/north-tc/diary?date=${DAY}`,
    );
    expect(
      diary.slots
        .filter((s) => s.slotId === slots[0]!.slotId || s.slotId === slots[1]!.slotId)
        .map((s) => s.free),
    ).toEqual([1, 1]);
    await w.json(w.clients.manager, 'POST', '/api/v1/slots/block', {
      slotIds: [slots[0]!.slotId],
      reason: 'Room flooded',
    });
    const blocked = await w.book(w.clients.adviser, caseId, slots[0]!.slotId);
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json().code).toBe('slot_blocked');
    await w.json(w.clients.manager, 'POST', '/api/v1/slots/release', {
      slotIds: [slots[0]!.slotId],
      reason: 'Dried out',
    });
    expect((await w.book(w.clients.adviser, caseId, slots[0]!.slotId)).statusCode).toBe(201);
  });

  it('only the owner books: slots allocated to another node are 409 slot_not_owned_here naming it, shown as held there, and cannot be returned by this node', async () => {
    await w.centre('east-tc');
    await w.json(w.clients.manager, 'POST', '/api/v1/centres/east-tc/allocation-policy', {
      toNodeId: 'node-111',
      toNodeName: '111 call centre',
      count: 2,
      cutoffMinutesBeforeStart: 30,
    });
    const slots = await w.session('east-tc', DAY, '10:00', '11:00');
    const held = slots.filter((s) => s.ownerNodeId === 'node-111');
    // Spread through the session: the first and the third.
    expect(held.map((s) => s.startLocal)).toEqual([`${DAY} 10:00`, `${DAY} 10:30`]);
    const caseId = await w.utcCase();
    const r = await w.book(w.clients.adviser, caseId, held[0]!.slotId);
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({
      code: 'slot_not_owned_here',
      ownerNodeId: 'node-111',
      ownerNodeName: '111 call centre',
    });
    const options = await w.json<{
      options: { slot: SlotJson; bookableHere: boolean; ownerNodeName: string }[];
    }>(w.clients.adviser, 'GET', `/api/v1/cases/${caseId}/appointment-options?limit=100`);
    const shown = options.options.find((o) => o.slot.slotId === held[0]!.slotId);
    expect(shown).toMatchObject({ bookableHere: false, ownerNodeName: '111 call centre' });
    // This node cannot give back what it does not hold; nor can it take the slots: only node-111 returns them.
    const notHeld = await w.clients.manager.request('POST', '/api/v1/slots/return', {
      slotIds: [held[0]!.slotId],
    });
    expect(notHeld.statusCode).toBe(400);
    expect(notHeld.json().errors[0].path).toBe('body.slotIds');
    // The invariant check finds nothing wrong.
    const check = await w.json<{ violations: unknown[] }>(
      w.clients.manager,
      'GET',
      '/api/v1/booking/custody-check',
    );
    expect(check.violations).toEqual([]);
  });

  it('reception: arrival queues the case for a clinician, waiting time turns at risk, seen-by, did not attend; no clinical notes; the case closes after the consultation', async () => {
    const [slot, other] = await w.session('north-tc', DAY, '12:30', '13:00');
    const caseId = await w.utcCase();
    const appt = (
      await w.json<{ appointment: AppointmentJson }>(
        w.clients.adviser,
        'POST',
        `/api/v1/cases/${caseId}/appointments`,
        { slotId: slot!.slotId },
      )
    ).appointment;
    const dnaCase = await w.utcCase();
    const dna = (
      await w.json<{ appointment: AppointmentJson }>(
        w.clients.adviser,
        'POST',
        `/api/v1/cases/${dnaCase}/appointments`,
        { slotId: other!.slotId, outsideTimeframeReason: undefined },
      )
    ).appointment;
    expect(
      (await w.clients.adviser.request('GET', `/api/v1/centres/north-tc/reception?date=${DAY}`)).statusCode,
    ).toBe(403);
    await w.json(w.clients.receptionist, 'POST', `/api/v1/appointments/${appt.bookingId}/arrived`);
    await w.json(w.clients.receptionist, 'POST', `/api/v1/appointments/${dna.bookingId}/did-not-attend`);
    const caseRow = await w.json<{ status: string }>(w.clients.clinician, 'GET', `/api/v1/cases/${caseId}`);
    expect(caseRow.status).toBe('queued');
    await w.wait(200); // 200 of the 240 minutes waited: less than a fifth left
    const list = await w.json<{ appointments: Record<string, unknown>[] }>(
      w.clients.receptionist,
      'GET',
      `/api/v1/centres/north-tc/reception?date=${DAY}`,
    );
    const mine = list.appointments.find((a) => a.bookingId === appt.bookingId)!;
    expect(mine).toMatchObject({ state: 'arrived', patientName: 'Pat Booker', waitingMinutes: 200 });
    expect(mine.waiting).toBe('at_risk');
    expect(list.appointments.find((a) => a.bookingId === dna.bookingId)).toMatchObject({
      state: 'did_not_attend',
    });
    const allowed = new Set([
      'bookingId',
      'caseId',
      'startMs',
      'startLocal',
      'patientName',
      'kind',
      'kindText',
      'state',
      'walkIn',
      'arrivedAtMs',
      'waitingMinutes',
      'timeframeMinutes',
      'waiting',
      'seenByName',
    ]);
    for (const row of list.appointments)
      for (const key of Object.keys(row)) expect(allowed.has(key), key).toBe(true);
    // The clinician takes the case from reception into the consultation and closes it.
    await w.json(w.clients.clinician, 'POST', `/api/v1/cases/${caseId}/claim`);
    expect(
      (await w.clients.clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode,
    ).toBe(204);
    await w.json(w.clients.clinician, 'POST', `/api/v1/appointments/${appt.bookingId}/seen`, {});
    await w.json(w.clients.clinician, 'POST', `/api/v1/cases/${caseId}/consultation/record`, {
      history: 'Cut to the hand, cleaned and closed',
    });
    const outcome = await w.clients.clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(outcome.statusCode, outcome.body).toBeLessThan(300);
    expect(
      (await w.json<{ status: string }>(w.clients.clinician, 'GET', `/api/v1/cases/${caseId}`)).status,
    ).toBe('closed');
    const after = await w.json<{ appointments: Record<string, unknown>[] }>(
      w.clients.receptionist,
      'GET',
      `/api/v1/centres/north-tc/reception?date=${DAY}`,
    );
    expect(after.appointments.find((a) => a.bookingId === appt.bookingId)).toMatchObject({
      state: 'seen',
      seenByName: 'clinician of northshire',
    });
  });

  it('a walk-in opens a case at the desk, arrived and in the clinicians’ queue', async () => {
    const r = await w.json<{ appointment: AppointmentJson }>(
      w.clients.receptionist,
      'POST',
      '/api/v1/centres/north-tc/walk-ins',
      { patientName: 'Wally Walker', callbackNumber: '07700 900123', presentingComplaint: 'Sprained ankle' },
      201,
    );
    expect(r.appointment).toMatchObject({ walkIn: true, state: 'arrived' });
    const c = await w.json<{ status: string }>(
      w.clients.clinician,
      'GET',
      `/api/v1/cases/${r.appointment.caseId}`,
    );
    expect(c.status).toBe('queued');
    const bad = await w.clients.receptionist.request('POST', '/api/v1/centres/north-tc/walk-ins', {
      callbackNumber: '07700 900123',
      presentingComplaint: 'Sprained ankle',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toBe('body.patientName');
  });

  it("suggests the nearest centre first within the timeframe when the patient's place is given; an unknown postcode is 400 naming it", async () => {
    await w.centre('near-tc', { lat: 53.8, lon: -1.55 });
    await w.centre('far-tc', { lat: 54.89, lon: -2.93 });
    // One slot at each, at the same time, within the timeframe of a case opened now.
    const start = formatLocal(w.t.clock.nowMs() + 3600_000);
    const [date, hour] = [start.slice(0, 10), start.slice(11, 13)];
    await w.session('near-tc', date, `${hour}:00`, `${hour}:15`);
    await w.session('far-tc', date, `${hour}:00`, `${hour}:15`);
    const caseId = await w.utcCase();
    type Options = {
      options: { centre: { centreId: string }; distanceKm: number | null; withinTimeframe: boolean }[];
    };
    const ask = (query: string) =>
      w.json<Options>(
        w.clients.adviser,
        'GET',
        `/api/v1/cases/${caseId}/appointment-options?limit=100${query}`,
      );
    const order = (o: Options) =>
      o.options
        .filter((x) => x.withinTimeframe && ['near-tc', 'far-tc'].includes(x.centre.centreId))
        .map((x) => x.centre.centreId);
    // A patient in Leeds: the Leeds centre first; in Carlisle: the Carlisle one.
    const fromLeeds = await ask('&latitude=53.79&longitude=-1.54');
    expect(order(fromLeeds)).toEqual(['near-tc', 'far-tc']);
    expect(fromLeeds.options.find((x) => x.centre.centreId === 'near-tc')!.distanceKm).toBeLessThan(2);
    expect(order(await ask('&latitude=54.9&longitude=-2.94'))).toEqual(['far-tc', 'near-tc']);
    // No place given: by time only, no distances.
    expect((await ask('')).options.every((x) => x.distanceKm === null)).toBe(true);
    const unknown = await w.clients.adviser.request(
      'GET',
      `/api/v1/cases/${caseId}/appointment-options?postcode=ZZ99%209ZZ`,
    );
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().errors[0].path).toBe('query.postcode');
    const half = await w.clients.adviser.request(
      'GET',
      `/api/v1/cases/${caseId}/appointment-options?latitude=53.79`,
    );
    expect(half.statusCode).toBe(400);
    expect(half.json().errors[0].path).toBe('query.longitude');
  });
});
