// The state layer's public surface: the envelope, the content model and the tolerant readers.
// Pure: no node:* imports, no fds; testable without /dev/kvm.

export { decodeBase64, encodeBase64 } from './base64.js';
export { crc32c } from './crc32c.js';
export {
  COMPAT_FORMAT_VERSION, CURRENT_FORMAT_VERSION, DEFAULT_MAX_STATE_BYTES, type DecodeEnvelopeOptions, type DecodedEnvelope, ENVELOPE_HEADER_BYTES,
  MIN_READABLE_FORMAT_VERSION, STATE_MAGIC, StateKind, decodeEnvelope, encodeEnvelope, newestCommonFormat, readableVersionsText,
} from './envelope.js';
export { StateFormatError, type StateFormatErrorCode } from './errors.js';
export { FieldReader, SectionReader, readSection, unknownSections } from './section-reader.js';
export { BLOB_TAG, type StateObject, type StateSection, type StateTree, type StateValue } from './tree.js';
export { decodeUtf8, encodeUtf8 } from './utf8.js';
