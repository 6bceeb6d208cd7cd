import { Title } from '@mantine/core';
import { useEffect, useRef, type ReactNode } from 'react';

/**
 * The screen's one h1. On every screen change it takes the focus (so a screen reader announces the
 * new screen and the keyboard starts from the top of it) and names the browser tab.
 */
export function PageTitle({ children, text }: { children: ReactNode; text?: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const title = text ?? (typeof children === 'string' ? children : '');
  useEffect(() => {
    document.title = title ? `${title} – Holdfast` : 'Holdfast';
    ref.current?.focus({ preventScroll: false });
  }, [title]);
  return (
    <Title order={1} ref={ref} tabIndex={-1} className="page-title" mb="md">
      {children}
    </Title>
  );
}
