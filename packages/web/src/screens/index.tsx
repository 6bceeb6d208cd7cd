import type { Permission } from '@holdfast/core';
import type { ReactNode } from 'react';
import { DIRECTORY_PERMISSIONS } from '../lib/directory.ts';
import { Account } from './Account.tsx';
import { CaseScreen } from './adviser/CaseScreen.tsx';
import { NewCall } from './adviser/NewCall.tsx';
import { CallsOpenTooLongScreen, MyOpenCallsScreen } from './adviser/OpenCalls.tsx';
import { ClinicianCase } from './clinician/ClinicianCase.tsx';
import { Queue } from './clinician/Queue.tsx';
import { Dashboard } from './manager/Dashboard.tsx';
import { Messages } from './manager/Messages.tsx';
import { ReferralAlerts } from './manager/ReferralAlerts.tsx';
import { Users } from './admin/Users.tsx';
import { Sites } from './admin/Sites.tsx';
import { Directory } from './admin/Directory.tsx';
import { Audit } from './Audit.tsx';
import { Centres } from './booking/Centres.tsx';
import { Reception } from './booking/Reception.tsx';
import { CaseSummary } from './records/CaseSummary.tsx';
import { PaperRecords } from './records/PaperRecords.tsx';
import { PatientRecord } from './records/PatientRecord.tsx';
import { Crew } from './crew/Crew.tsx';
import { DispatchBoard } from './dispatch/Board.tsx';
import { Rota } from './rota/Rota.tsx';

export interface Screen {
  path: string;
  permission: Permission;
  /** Another permission that opens the screen too (a screen two kinds of staff use differently). */
  orPermission?: Permission;
  render(params: Record<string, string>): ReactNode;
}

/** Every screen and its URL (listed in packages/web/UI-NOTES.md for the browser tests). */
export const SCREENS: Screen[] = [
  { path: '/calls/new', permission: 'cases.handle', render: () => <NewCall /> },
  { path: '/calls/mine', permission: 'cases.handle', render: () => <MyOpenCallsScreen /> },
  { path: '/paper', permission: 'cases.handle', render: () => <PaperRecords /> },
  { path: '/calls/open-too-long', permission: 'reports.read', render: () => <CallsOpenTooLongScreen /> },
  {
    path: '/cases/:caseId',
    permission: 'cases.read',
    render: (p) => <CaseScreen key={p.caseId} caseId={p.caseId!} />,
  },
  {
    path: '/cases/:caseId/summary',
    permission: 'cases.read',
    render: (p) => <CaseSummary key={p.caseId} caseId={p.caseId!} />,
  },
  {
    path: '/patients/:patientId',
    permission: 'patients.read',
    render: (p) => <PatientRecord key={p.patientId} patientId={p.patientId!} />,
  },
  { path: '/queue', permission: 'queue.read', render: () => <Queue /> },
  {
    path: '/queue/:caseId',
    permission: 'queue.work',
    render: (p) => <ClinicianCase key={p.caseId} caseId={p.caseId!} />,
  },
  { path: '/dashboard', permission: 'reports.read', render: () => <Dashboard /> },
  { path: '/messages', permission: 'messages.read', render: () => <Messages /> },
  { path: '/referrals', permission: 'messages.manage', render: () => <ReferralAlerts /> },
  { path: '/admin/users', permission: 'users.manage', render: () => <Users /> },
  { path: '/admin/sites', permission: 'sites.manage', render: () => <Sites /> },
  // Provider admins edit it; clinicians and shift managers set capacity on the same list.
  {
    path: '/admin/directory',
    permission: DIRECTORY_PERMISSIONS.read,
    orPermission: DIRECTORY_PERMISSIONS.edit,
    render: () => <Directory />,
  },
  // Treatment-centre appointments (C6): the diaries and the centre's reception desk.
  { path: '/admin/centres', permission: 'diaries.manage', render: () => <Centres /> },
  { path: '/reception', permission: 'reception.work', render: () => <Reception /> },
  { path: '/audit', permission: 'audit.read', render: () => <Audit /> },
  // Home visits, dispatch and the rota (C7, C12).
  { path: '/dispatch', permission: 'visits.read', render: () => <DispatchBoard /> },
  { path: '/crew', permission: 'visits.crew', render: () => <Crew /> },
  { path: '/rota', permission: 'rota.read', render: () => <Rota /> },
  { path: '/account', permission: 'session.self', render: () => <Account /> },
];
