import type { OnMalformed } from '../../services/shared/contracts/stream-codec.js';

/** For the stream codec's decoders in tests: an entry or record that does not match the contract fails the test. */
export const strictly: OnMalformed = (entryId, problem) => {
  throw new Error(`stream entry ${entryId}: ${problem}`);
};
