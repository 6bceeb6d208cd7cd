import type { Permission } from '@holdfast/core';
import type { ReactNode } from 'react';
import { Account } from './Account.tsx';

export interface Screen {
  path: string;
  permission: Permission;
  render(params: Record<string, string>): ReactNode;
}

/** Every screen and its URL (listed in packages/web/UI-NOTES.md for the browser tests). */
export const SCREENS: Screen[] = [
  { path: '/account', permission: 'session.self', render: () => <Account /> },
];
