/** The Administration UI's entry (bundled to dist/ui/app.js by scripts/build-ui.mjs). */
import { startApp } from './app.js';
import { applicationsPage } from './pages/applications.js';
import { credentialsPage } from './pages/credentials.js';
import { endpointsPage } from './pages/endpoints.js';
import { keysPage } from './pages/keys.js';
import { livePage } from './pages/live.js';
import { nodePage } from './pages/node.js';
import { ownersPage } from './pages/owners.js';
import { sessionsPage } from './pages/sessions.js';
import { tenantsPage } from './pages/tenants.js';
import { verifiersPage } from './pages/verifiers.js';

const root = document.getElementById('app');
if (root) {
  startApp(root, [tenantsPage, applicationsPage, credentialsPage, endpointsPage, verifiersPage, ownersPage, sessionsPage, keysPage, nodePage, livePage]);
}
