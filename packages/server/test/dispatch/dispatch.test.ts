import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pdfTexts, textWith } from '../downtime/pdf-text.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { DispatchWorld, HOUR, type VehicleJson, type VisitJson } from './support.ts';

/**
 * Home visits end to end on both stores: the clinician's "home visit within 4 hours" creates the visit
 * in the outcome's commit with the patient's address and access instructions; the dispatcher sees the
 * address but not the way in, and only cars whose crew is on shift; the crew's phone gets the access
 * instructions, updates status and position (bounded), and records the outcome, which closes the
 * case with the Post Event Message decided in the same commit.
 */
describe.each(STORE_KINDS)('home visits and dispatch on %s', (kind) => {
  const w = new DispatchWorld();
  beforeAll(async () => {
    await w.start(kind);
  });
  afterAll(async () => {
    await w.stop();
  });

  it('a shift with no clinician on duty for a car: the car is not offered; the manager sees the gap', async () => {
    const crewed = await w.car('Alpha 1', 54.02, -1.5);
    const half = await w.car('Bravo 2', 54.001, -1.5);
    await w.shift('driver', { kind: 'car', id: crewed });
    await w.shift('prescriber', { kind: 'car', id: crewed });
    // Bravo 2 has a driver on the rota but no clinician.
    const other = w.t.providers[0]!.users;
    await w.json('shift_manager', 'POST', '/api/v1/rota/shifts', {
      userName: other.receptionist.username,
      role: 'driver',
      location: { kind: 'car', id: half },
      startMs: w.t.clock.nowMs() - HOUR,
      endMs: w.t.clock.nowMs() + 7 * HOUR,
    });
    await w.json('shift_manager', 'POST', '/api/v1/rota/minimums', {
      role: 'clinician',
      location: { kind: 'car', id: half },
      minimum: 1,
    });

    const visit = await w.homeVisit(await w.consultation(await w.patient()));
    const board = await w.json<{ visits: VisitJson[]; vehicles: VehicleJson[] }>(
      'dispatcher',
      'GET',
      '/api/v1/dispatch/board',
    );
    const onBoard = board.visits.find((v) => v.visitId === visit.visitId)!;
    // Bravo 2 is nearer the patient, but its crew is not complete: only Alpha 1 is offered.
    expect(onBoard.suggestions!.map((s) => s.vehicleId)).toEqual([crewed]);
    expect(board.vehicles.find((v) => v.vehicleId === half)!.available).toBe(false);
    expect(board.vehicles.find((v) => v.vehicleId === crewed)!.available).toBe(true);
    const refused = await w.clients.dispatcher.request('POST', `/api/v1/visits/${visit.visitId}/allocate`, {
      vehicleId: half,
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toMatch(/crew .* is not on shift/);

    const gaps = await w.json<{
      gaps: { role: string; location: { kind: string; id: string }; onDuty: number; minimum: number }[];
    }>('shift_manager', 'GET', '/api/v1/rota/gaps');
    expect(gaps.gaps).toContainEqual(
      expect.objectContaining({
        role: 'clinician',
        location: { kind: 'car', id: half },
        onDuty: 0,
        minimum: 1,
      }),
    );
  });

  it('clinician requests → dispatcher allocates → crew status, position, outcome → case closed with its PEM', async () => {
    const car = await w.car('Charlie 3', 54.03, -1.52);
    const patientId = await w.patient();
    const caseId = await w.consultation(patientId);
    const visit = await w.homeVisit(caseId, 2);
    expect(visit).toMatchObject({
      status: 'requested',
      timing: 'on_time',
      address: '3 Sample Row, Northshire',
    });
    // The clinician sees the way in; the visit and the outcome are one commit.
    expect(visit.accessInstructions).toMatch(/code 4321/);
    const [outcome, arranged, requested] = await w
      .eventsOf(['case.outcome_recorded', 'case.follow_up_arranged', 'visit.requested'])
      .then((e) => e.slice(-3));
    expect([outcome!.type, arranged!.type, requested!.type]).toEqual([
      'case.outcome_recorded',
      'case.follow_up_arranged',
      'visit.requested',
    ]);
    // One append: the outcome, its follow-up, the audit of the read it answers with, the visit.
    expect(requested!.seq - outcome!.seq).toBe(3);
    expect(requested!.payload).toMatchObject({ caseId, patientId, withinHours: 2, priority: 1 });
    expect(requested!.payload.deadlineMs).toBe(w.t.clock.nowMs() + 2 * HOUR);

    // The dispatcher sees the address, not the key-safe code.
    const seen = await w.json<{ visit: VisitJson }>('dispatcher', 'GET', `/api/v1/visits/${visit.visitId}`);
    expect(seen.visit.address).toBe('3 Sample Row, Northshire');
    expect(seen.visit.accessInstructions).toBeUndefined();
    expect(seen.visit.accessInstructionsWithheld).toBe(true);
    expect(JSON.stringify(seen)).not.toContain('4321');

    // Alpha 1's crew from the first test is on shift; allocate it (the first suggestion).
    const suggestions = await w.json<{ suggestions: { vehicleId: string }[] }>(
      'dispatcher',
      'GET',
      `/api/v1/visits/${visit.visitId}/suggestions`,
    );
    const chosen = suggestions.suggestions[0]!.vehicleId;
    expect(chosen).not.toBe(car); // Charlie 3 has no crew on shift
    const allocated = await w.json<{ visit: VisitJson }>(
      'dispatcher',
      'POST',
      `/api/v1/visits/${visit.visitId}/allocate`,
      {
        vehicleId: chosen,
      },
    );
    expect(allocated.visit).toMatchObject({ status: 'allocated', vehicleId: chosen });
    const again = await w.clients.dispatcher.request('POST', `/api/v1/visits/${visit.visitId}/allocate`, {
      vehicleId: chosen,
    });
    expect(again.statusCode).toBe(409);

    // The downtime pack carries the cars, crews and visits in progress; the way in only for clinicians.
    const dispatcherPack = await w.clients.dispatcher.request('GET', '/api/v1/downtime-pack.pdf');
    expect(dispatcherPack.statusCode).toBe(200);
    textWith(dispatcherPack.rawPayload, ['Cars and crews', 'Home visits in progress']);
    textWith(dispatcherPack.rawPayload, ['3 Sample Row', 'Alpha 1']);
    expect(pdfTexts(dispatcherPack.rawPayload).join('\n')).not.toContain('4321');
    const clinicianPack = await w.clients.clinician.request('GET', '/api/v1/downtime-pack.pdf');
    textWith(clinicianPack.rawPayload, ['3 Sample Row', 'code 4321']);

    // The crew's phone: the car, the visit with the access instructions.
    const me = await w.json<{ vehicle: VehicleJson; visit: VisitJson }>('driver', 'GET', '/api/v1/crew/me');
    expect(me.vehicle.vehicleId).toBe(chosen);
    expect(me.visit.visitId).toBe(visit.visitId);
    expect(me.visit.accessInstructions).toMatch(/code 4321/);
    // A crew member of another car (none) is told so, not shown the visit.
    const nobody = await w.json<{ vehicle: null; visit: null }>('clinician', 'GET', '/api/v1/crew/me');
    expect(nobody.visit).toBeNull();

    await w.json('driver', 'POST', '/api/v1/crew/status', { status: 'travelling' });
    expect(
      (await w.json<{ visit: VisitJson }>('dispatcher', 'GET', `/api/v1/visits/${visit.visitId}`)).visit
        .status,
    ).toBe('travelling');
    // Positions: kept, then one 5 s later 50 m on is not kept, one 600 m on is.
    const first = await w.json<{ recorded: boolean }>('driver', 'POST', '/api/v1/crew/position', {
      lat: 54.02,
      lon: -1.5,
      accuracyM: 10,
    });
    expect(first.recorded).toBe(true);
    w.t.clock.advance(5_000);
    const near = await w.json<{ recorded: boolean; reason: string }>(
      'driver',
      'POST',
      '/api/v1/crew/position',
      {
        lat: 54.0204,
        lon: -1.5,
        accuracyM: 10,
      },
    );
    expect(near).toMatchObject({ recorded: false });
    expect(near.reason).toMatch(/15 s/);
    const far = await w.json<{ recorded: boolean }>('driver', 'POST', '/api/v1/crew/position', {
      lat: 54.0146,
      lon: -1.5,
      accuracyM: 10,
    });
    expect(far.recorded).toBe(true);
    w.t.clock.advance(20_000);
    expect(
      (
        await w.json<{ recorded: boolean }>('driver', 'POST', '/api/v1/crew/position', {
          lat: 54.0146,
          lon: -1.5,
          accuracyM: 10,
        })
      ).recorded,
    ).toBe(true);
    await w.json('driver', 'POST', '/api/v1/crew/status', { status: 'on_scene' });

    // Another crew cannot record the outcome; the car's crew can.
    const stranger = await w.clients.clinician.request('POST', `/api/v1/visits/${visit.visitId}/outcome`, {
      outcome: 'seen',
      note: '',
    });
    expect(stranger.statusCode).toBe(403);
    const done = await w.json<{ visit: VisitJson }>(
      'driver',
      'POST',
      `/api/v1/visits/${visit.visitId}/outcome`,
      {
        outcome: 'seen',
        note: 'Seen and treated at home',
      },
    );
    expect(done.visit.status).toBe('completed');
    const caseRead = await w.json<{ status: string }>('clinician', 'GET', `/api/v1/cases/${caseId}`);
    expect(caseRead.status).toBe('closed');
    // The close and the PEM's decision (queued, or not sent with the reason) are the visit outcome's commit.
    const tail = (
      await w.eventsOf(['visit.outcome_recorded', 'case.closed', 'message.queued', 'pem.not_sent'])
    ).slice(-3);
    expect(tail.map((e) => e.type)).toEqual(
      expect.arrayContaining(['visit.outcome_recorded', 'case.closed']),
    );
    expect(tail.some((e) => e.type === 'message.queued' || e.type === 'pem.not_sent')).toBe(true);
  });
});
