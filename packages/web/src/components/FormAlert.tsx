import { Alert } from '@mantine/core';
import { useEffect, useRef } from 'react';

/** A problem with the form as a whole, announced to screen readers and taking the focus once. */
export function FormAlert({ message, title = 'Please check' }: { message: string | null; title?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (message) ref.current?.focus();
  }, [message]);
  if (!message) return null;
  return (
    <Alert ref={ref} tabIndex={-1} color="red" variant="light" title={title} role="alert" mb="md">
      {message}
    </Alert>
  );
}
