import { ROLE_LABELS } from '@holdfast/core';
import { List, Stack, Text } from '@mantine/core';
import { PageTitle } from '../components/PageTitle.tsx';
import { useUser } from '../lib/session.tsx';

export function Account() {
  const user = useUser();
  return (
    <Stack maw={640}>
      <PageTitle>My account</PageTitle>
      <Text>
        Signed in as <strong>{user.displayName}</strong> ({user.username}).
      </Text>
      <List>
        {user.roles.map((r) => (
          <List.Item key={r}>{ROLE_LABELS[r]}</List.Item>
        ))}
      </List>
    </Stack>
  );
}
