import { Button, Group, Paper, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';

export function Sites() {
  const queryClient = useQueryClient();
  const sites = useQuery({
    queryKey: ['admin-sites'],
    queryFn: async () =>
      (await api<{ sites: { siteId: string; name: string }[] }>('GET', '/api/v1/admin/sites')).sites,
  });
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!name.trim()) return problems.setField('name', 'Enter the name of the site.');
    setBusy(true);
    try {
      await api('POST', '/api/v1/admin/sites', { name: name.trim() });
      setName('');
      await queryClient.invalidateQueries({ queryKey: ['admin-sites'] });
      await queryClient.invalidateQueries({ queryKey: ['sites'] });
    } catch (error) {
      problems.fromError(error, ['name']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Stack maw={800}>
      <PageTitle>Sites</PageTitle>
      <Paper
        withBorder
        p="md"
        component="form"
        onSubmit={(e: FormEvent) => void submit(e)}
        aria-labelledby="new-site-heading"
        noValidate
      >
        <Title order={2} size="h3" id="new-site-heading" mb="xs">
          Add a site
        </Title>
        <FormAlert message={problems.form} />
        <Group align="flex-start">
          <TextInput
            label="Site name"
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={problems.field('name')}
            autoComplete="off"
          />
          <Button type="submit" loading={busy} mt={24}>
            Add site
          </Button>
        </Group>
      </Paper>
      <Table striped withTableBorder>
        <Table.Caption>Sites of your provider</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Name</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(sites.data ?? []).map((s) => (
            <Table.Tr key={s.siteId}>
              <Table.Td>{s.name}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {sites.isError && <Text c="red.9">The sites could not be read: {sites.error.message}</Text>}
    </Stack>
  );
}
