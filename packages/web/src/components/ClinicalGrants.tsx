import { ROLE_LABELS, type Role } from '@holdfast/core';
import { Alert, Stack, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { api } from '../lib/api.ts';
import { londonDateTime } from '../lib/time.ts';

interface ClinicalGrant {
  at: string;
  user: { userId: string; name: string | null };
  roles: Role[];
  reason: string | null;
  grantedBy: string;
  byYou: boolean;
}

/** Where each screen reads the alert: administrators from their own route, the shift dashboard from its. */
export const CLINICAL_GRANT_SOURCES = {
  admin: { queryKey: 'admin-alerts', url: '/api/v1/admin/alerts' },
  dashboard: { queryKey: 'dashboard-clinical-grants', url: '/api/v1/dashboard/clinical-role-grants' },
} as const;

/**
 * Clinical roles granted in the last 14 days, with who gave them and why: the alert that lets
 * someone other than the granting administrator notice a grant (a clinical role reads clinical notes
 * and safeguarding text). Grants the reader made themselves are left out; nothing shows when there
 * are none.
 */
export function ClinicalGrants({ source }: { source: keyof typeof CLINICAL_GRANT_SOURCES }) {
  const { queryKey, url } = CLINICAL_GRANT_SOURCES[source];
  const alerts = useQuery({
    queryKey: [queryKey],
    queryFn: async () => (await api<{ clinicalRoleGrants: ClinicalGrant[] }>('GET', url)).clinicalRoleGrants,
    refetchInterval: source === 'dashboard' ? 60_000 : false,
  });
  const others = (alerts.data ?? []).filter((g) => !g.byYou);
  if (others.length === 0) return null;
  return (
    <Alert color="orange" title="Clinical roles granted in the last 14 days" data-testid="clinical-grants">
      <Stack gap={4}>
        {others.map((g) => (
          <Text key={`${g.at}-${g.user.userId}`} size="sm">
            {londonDateTime(g.at)}: {g.grantedBy} gave {g.user.name ?? 'a user'}{' '}
            {g.roles.map((r) => ROLE_LABELS[r]).join(', ')}. Reason: {g.reason}
          </Text>
        ))}
      </Stack>
    </Alert>
  );
}
