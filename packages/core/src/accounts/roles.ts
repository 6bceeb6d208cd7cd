/**
 * Roles and the permission table. Every HTTP route declares one permission from this table; the
 * service layer checks it on every command and query. Field-level rules say which parts of a record
 * each role sees.
 */
export const ROLES = [
  'health_adviser',
  'clinician',
  'prescriber',
  'dispatcher',
  'receptionist',
  'driver',
  'shift_manager',
  'provider_admin',
  'auditor',
] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABELS: Record<Role, string> = {
  health_adviser: 'Health adviser',
  clinician: 'Clinician',
  prescriber: 'Prescriber',
  dispatcher: 'Dispatcher',
  receptionist: 'Receptionist',
  driver: 'Driver',
  shift_manager: 'Shift manager',
  provider_admin: 'Provider admin',
  auditor: 'Auditor',
};

export const PERMISSIONS = [
  /** Own session: who am I, sign out, change own second factor. */
  'session.self',
  'patients.read',
  'patients.search',
  'patients.write',
  /**
   * Change a registered patient's details (address, phones, practice, pharmacy, interpreter,
   * contacts, allergies), add special notes and raise a safeguarding concern from a case.
   */
  'patients.edit',
  /** Field level: clinical notes on a patient record. */
  'patients.clinical_notes.read',
  /** Field level: how to get into the patient's home (key safe codes, entry arrangements). */
  'patients.access_instructions.read',
  /** Open a record outside one's normal scope, with a stated reason that is flagged for review. */
  'patients.break_glass',
  /** Take calls: open a case, identify the patient, run triage, act on the disposition. */
  'cases.handle',
  /** Refer a case to a service from the directory, and book its slots (C10). */
  'cases.refer',
  /** Prescribe from a consultation: check, issue, cancel and print prescriptions (C9). */
  'cases.prescribe',
  'cases.read',
  /** The clinical assessment queue: see it, claim, release, transfer, call back. */
  'queue.work',
  'queue.read',
  /** Record consultations and their outcomes. */
  'consultations.write',
  /** National reporting (IUC ADC) and dashboards. */
  'reports.read',
  'users.manage',
  'sites.manage',
  'sessions.manage',
  'audit.read',
  /** Print the downtime pack: the site's open cases and call-backs on paper, for when systems fail. */
  'downtime.pack',
  /** See collisions between nodes (reconciliation items) and the decisions taken on them. */
  'reconciliation.read',
  /** Decide a reconciliation item (who keeps a case, whether a closed case reopens…). */
  'reconciliation.resolve',
  /** See messages to other systems (ambulance requests, PEMs, referrals) and their delivery. */
  'messages.read',
  /**
   * See and take work at every site of the provider, not only one's own sites (the CAS queue is
   * scoped to a user's sites by default).
   */
  'queue.all_sites',
  /** Retry a failed message or cancel an unanswered one, with a reason. */
  'messages.manage',
  /** Configure the systems the provider sends to (ambulance service, GP practices…). */
  'endpoints.manage',
  /** See the Directory of Services and search it for a case (C10). */
  'directory.read',
  /** Add, change and remove directory services; import and export directory and postcode files. */
  'directory.edit',
  /** Set a service's capacity (green, amber, red). */
  'directory.capacity',
  /** Book, rebook and cancel a treatment-centre appointment for a case (C6). */
  'appointments.book',
  /** Treatment centres: rooms, clinician sessions, slot templates, blocking slots, allocations (C6). */
  'diaries.manage',
  /** A centre's reception: the day's list, arrivals, did-not-attend, walk-ins (C6). */
  'reception.work',
  /** See the rota: who is on duty where, now and next (C12). */
  'rota.read',
  /** Enter and import shifts and set the minimum staffing per role and site (C12). */
  'rota.manage',
  /** See the home-visit queue and the cars (C7). */
  'visits.read',
  /** Allocate and re-allocate cars to home visits (C7). */
  'visits.dispatch',
  /** A car's crew: status, position and the visit's outcome from the crew's phone (C7). */
  'visits.crew',
  /** Add and retire cars (C7). */
  'vehicles.manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const CARE: Permission[] = [
  'session.self',
  'patients.read',
  'patients.search',
  'cases.read',
  'downtime.pack',
  'directory.read',
  'rota.read',
];
const CLINICAL: Permission[] = [
  ...CARE,
  'patients.write',
  'patients.edit',
  'patients.clinical_notes.read',
  'patients.access_instructions.read',
  'patients.break_glass',
  'cases.handle',
  'cases.refer',
  'queue.read',
  'queue.work',
  'consultations.write',
  'messages.read',
  'directory.capacity',
  'appointments.book',
  'reception.work',
  'visits.read',
  'visits.crew',
];

export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  health_adviser: [
    ...CARE,
    'patients.write',
    'patients.edit',
    'cases.handle',
    'cases.refer',
    'queue.read',
    'messages.read',
    'appointments.book',
  ],
  clinician: CLINICAL,
  prescriber: [...CLINICAL, 'cases.prescribe'],
  dispatcher: [...CARE, 'patients.access_instructions.read', 'queue.read', 'visits.read', 'visits.dispatch'],
  receptionist: [...CARE, 'patients.write', 'appointments.book', 'reception.work'],
  // A driver sees only the car's own work, on the crew's phone.
  driver: ['session.self', 'rota.read', 'visits.crew'],
  shift_manager: [
    ...CARE,
    'patients.clinical_notes.read',
    'patients.break_glass',
    'queue.read',
    'reports.read',
    'reconciliation.read',
    'reconciliation.resolve',
    'messages.read',
    'messages.manage',
    'queue.all_sites',
    'directory.capacity',
    'diaries.manage',
    'reception.work',
    'rota.manage',
    'visits.read',
    'visits.dispatch',
    'vehicles.manage',
  ],
  // Administrators manage people, not patients: they see no patient data.
  provider_admin: [
    'session.self',
    'users.manage',
    'sites.manage',
    'sessions.manage',
    'endpoints.manage',
    'directory.edit',
    'diaries.manage',
    'rota.manage',
    'vehicles.manage',
  ],
  auditor: ['session.self', 'audit.read', 'reports.read'],
};

export function permissionsOf(roles: readonly Role[]): Set<Permission> {
  const out = new Set<Permission>();
  for (const r of roles) for (const p of ROLE_PERMISSIONS[r]) out.add(p);
  return out;
}

export function hasPermission(roles: readonly Role[], permission: Permission): boolean {
  return roles.some((r) => ROLE_PERMISSIONS[r].includes(permission));
}

/** Roles whose second factor must be a passkey (phishing-resistant), not only TOTP. */
export const PASSKEY_REQUIRED_ROLES: readonly Role[] = ['provider_admin'];

export function requiresPasskey(roles: readonly Role[]): boolean {
  return roles.some((r) => PASSKEY_REQUIRED_ROLES.includes(r));
}

/**
 * What an administrator is told when a user who works with patients is given no site: they see no
 * queue and no case, and claim nothing, until a site is added (work is scoped to a user's sites;
 * `queue.all_sites` is the only way across them). Null when there is nothing to warn about.
 */
export function noSitesWarning(roles: readonly Role[], siteIds: readonly string[]): string | null {
  if (siteIds.length > 0) return null;
  const worksWithPatients = roles.some(
    (r) => ROLE_PERMISSIONS[r].includes('queue.read') || ROLE_PERMISSIONS[r].includes('cases.read'),
  );
  if (!worksWithPatients) return null;
  return hasPermission(roles, 'queue.all_sites')
    ? 'This user has no sites: they see every site’s queue (their role works across sites), but every patient record they open needs break-glass with a reason. Add their sites.'
    : 'This user has no sites: they will see no queue and no cases, and cannot claim work, until you give them at least one site.';
}
