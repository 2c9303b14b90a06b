/** The SDK's view of the wire schemas: the same avsc types the server uses (src/protocol/schemas.ts). */
import { types } from '../protocol/schemas.js';

export default types;
