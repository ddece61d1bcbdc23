// The global setup of the tiers that need "client" (see jest-setup.mjs for why a file each).
import { setupFor } from './jest-setup.mjs';

export default (_globalConfig, projectConfig) => setupFor('client', projectConfig);
