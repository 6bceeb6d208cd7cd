import { describe, expect, it } from 'vitest';
import { Client, startTestApp } from '../support/http.ts';

describe('smoke', () => {
  it('signs in and reads', async () => {
    const t = await startTestApp('sqlite');
    try {
      const admin = new Client(t.app, t.clock);
      const adviser = new Client(t.app, t.clock);
      const r = await adviser.signIn('health_adviser@northshire');
      expect(r.statusCode, r.body).toBe(200);
      const p = await adviser.request('POST', '/api/v1/patients', {
        homeSiteId: t.providers[0]!.sites[0],
        record: {
          givenName: 'Ann',
          familyName: 'Example',
          dateOfBirth: '1950-02-01',
          sex: 'female',
          specialNotes: [{ kind: 'dnacpr', text: 'DNACPR in place' }],
          clinicalNotes: 'x',
          accessInstructions: 'key safe 1234',
        },
      });
      expect(p.statusCode, p.body).toBe(201);
      const id = (p.json() as { patientId: string }).patientId;
      const read = await adviser.request('GET', `/api/v1/patients/${id}`);
      expect(read.statusCode, read.body).toBe(200);
      console.log(read.body);
      const denied = await adviser.request('GET', '/api/v1/admin/users');
      expect(denied.statusCode).toBe(403);
      const a = await admin.request('POST', '/api/v1/auth/sign-in', {
        username: 'provider_admin@northshire',
        password: 'correct horse battery staple',
      });
      console.log(a.body);
    } finally {
      await t.close();
    }
  });
});
