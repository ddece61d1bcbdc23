// The global setup of the tiers that need "services" (see jest-setup.mjs for why a file each).
import { setupFor } from './jest-setup.mjs';

export default (_globalConfig, projectConfig) => setupFor('services', projectConfig);
