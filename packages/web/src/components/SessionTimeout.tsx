import { Button, Group, Modal, Text } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { useSession } from '../lib/session.tsx';
import { clock } from '../lib/time.ts';

/** Warn this long before the idle timeout ends the session. */
const WARN_BEFORE_MS = 2 * 60_000;
const ACTIVITY_EVENTS = ['keydown', 'pointerdown', 'wheel', 'touchstart'] as const;

/**
 * The idle timeout counts from the last thing the person did (a key, a click, a scroll), not from
 * the last request: the live queue and the status line poll the server by themselves, which must not
 * keep an unattended screen signed in. Two minutes before the timeout a dialog asks whether to stay;
 * at the timeout the screen signs out (the server's own idle timeout is the backstop).
 */
export function SessionTimeoutWarning() {
  const session = useSession();
  const lastActivity = useRef(Date.now());
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const mark = () => {
      lastActivity.current = Date.now();
    };
    for (const e of ACTIVITY_EVENTS) window.addEventListener(e, mark, { passive: true, capture: true });
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      for (const e of ACTIVITY_EVENTS) window.removeEventListener(e, mark, { capture: true });
      clearInterval(timer);
    };
  }, []);
  const remainingMs = lastActivity.current + session.idleTimeoutMs - now;
  const expired = remainingMs <= 0;
  const { signOut } = session;
  useEffect(() => {
    if (expired)
      void signOut('You were signed out because nothing was done for a while. Sign in again to carry on.');
  }, [expired, signOut]);
  const open = remainingMs <= WARN_BEFORE_MS && !expired;
  const stay = () => {
    lastActivity.current = Date.now();
    setNow(Date.now());
    // A request now also keeps the server's session alive.
    void session.refresh().catch(() => undefined);
  };
  return (
    <Modal
      opened={open}
      onClose={stay}
      title="Your session is about to end"
      closeButtonProps={{ 'aria-label': 'Stay signed in' }}
      centered
    >
      <Text mb="md">
        Nothing has been done on this screen for a while. You will be signed out in{' '}
        <strong data-testid="session-countdown">{clock(remainingMs / 1000)}</strong> unless you carry on.
      </Text>
      <Group justify="flex-end">
        <Button variant="default" onClick={() => void session.signOut()}>
          Sign out now
        </Button>
        <Button onClick={stay} data-autofocus>
          Stay signed in
        </Button>
      </Group>
    </Modal>
  );
}
