import { Button, Group, Modal, Text } from '@mantine/core';
import { useEffect, useState } from 'react';
import { lastServerActivity } from '../lib/api.ts';
import { useSession } from '../lib/session.tsx';
import { clock } from '../lib/time.ts';

/** Warn this long before the idle timeout ends the session. */
const WARN_BEFORE_MS = 2 * 60_000;

/**
 * Sessions end after a period with no request (30 minutes by default). Two minutes before that,
 * this asks whether to stay signed in; staying sends a request, which counts as activity.
 */
export function SessionTimeoutWarning() {
  const session = useSession();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const remainingMs = lastServerActivity() + session.idleTimeoutMs - now;
  const expired = remainingMs <= 0;
  const { refresh } = session;
  useEffect(() => {
    // At zero the server has ended the session: ask it, which signs the screen out with a reason.
    if (expired) void refresh().catch(() => undefined);
  }, [expired, refresh]);
  const open = remainingMs <= WARN_BEFORE_MS && remainingMs > 0;
  return (
    <Modal
      opened={open}
      onClose={() => void session.refresh()}
      title="Your session is about to end"
      closeButtonProps={{ 'aria-label': 'Stay signed in' }}
      centered
    >
      <Text mb="md">
        Nothing has been sent for a while. You will be signed out in{' '}
        <strong data-testid="session-countdown">{clock(remainingMs / 1000)}</strong> unless you carry on.
      </Text>
      <Group justify="flex-end">
        <Button variant="default" onClick={() => void session.signOut()}>
          Sign out now
        </Button>
        <Button onClick={() => void session.refresh()} data-autofocus>
          Stay signed in
        </Button>
      </Group>
    </Modal>
  );
}
