import { Center, Loader, Text } from '@mantine/core';
import { useEffect, type ReactNode } from 'react';
import { Layout } from './components/Layout.tsx';
import { PageTitle } from './components/PageTitle.tsx';
import { match, navigate, usePath } from './lib/router.tsx';
import { homeFor, useSession } from './lib/session.tsx';
import { SignIn } from './screens/SignIn.tsx';
import { SCREENS } from './screens/index.tsx';

/** Client routes: the server answers index.html for each, and the screen checks permissions. */
export function App() {
  const session = useSession();
  const { pathname } = usePath();
  const user = session.user;

  useEffect(() => {
    if (user === null && pathname !== '/sign-in') {
      const back = pathname === '/' ? '' : `?next=${encodeURIComponent(pathname)}`;
      navigate(`/sign-in${back}`, { replace: true });
    }
    if (user && (pathname === '/sign-in' || pathname === '/')) {
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : homeFor(user), {
        replace: true,
      });
    }
  }, [user, pathname]);

  if (user === undefined)
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  if (user === null)
    return (
      <main id="main">
        <SignIn />
      </main>
    );

  let screen: ReactNode = null;
  for (const s of SCREENS) {
    const params = match(s.path, pathname);
    if (params) {
      screen =
        session.can(s.permission) || (s.orPermission && session.can(s.orPermission)) ? (
          s.render(params)
        ) : (
          <>
            <PageTitle>Not available for your role</PageTitle>
            <Text>Your role does not include this screen. Use the menu above.</Text>
          </>
        );
      break;
    }
  }
  if (!screen && pathname !== '/' && pathname !== '/sign-in')
    screen = (
      <>
        <PageTitle>Page not found</PageTitle>
        <Text>There is no screen at this address. Use the menu above.</Text>
      </>
    );
  return <Layout>{screen}</Layout>;
}
