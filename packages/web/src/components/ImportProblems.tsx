import { Alert, Table } from '@mantine/core';
import type { Ref } from 'react';

/** A file refused whole (directory, rota): its problems by line and field, focused so they are read. */
export function ImportProblems({
  refused,
  alertRef,
}: {
  refused: { title: string; rows: { line: number | string; field: string; message: string }[] };
  alertRef: Ref<HTMLDivElement>;
}) {
  return (
    <Alert
      ref={alertRef}
      tabIndex={-1}
      color="red"
      variant="light"
      role="alert"
      mt="sm"
      title={refused.title}
      data-testid="import-problems"
    >
      <Table>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Line</Table.Th>
            <Table.Th scope="col">Field</Table.Th>
            <Table.Th scope="col">Problem</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {refused.rows.map((r, i) => (
            <Table.Tr key={i} data-line={r.line} data-field={r.field}>
              <Table.Td>{r.line}</Table.Td>
              <Table.Td>{r.field}</Table.Td>
              <Table.Td>{r.message}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Alert>
  );
}
