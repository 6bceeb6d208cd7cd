import { Alert } from '@mantine/core';

/** Sample triage content must say so wherever it appears. */
export const SAMPLE_TEXT = 'Sample content for demonstration — not clinically validated';

export function SampleNotice({ text = SAMPLE_TEXT, compact = false }: { text?: string; compact?: boolean }) {
  return (
    <Alert
      color="yellow"
      variant="outline"
      p={compact ? 'xs' : 'sm'}
      mb="sm"
      className="sample-notice"
      title={compact ? undefined : 'Not clinically validated'}
    >
      {text}
    </Alert>
  );
}
