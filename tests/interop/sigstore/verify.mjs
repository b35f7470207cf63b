#!/usr/bin/env node
// An independent check of socle's Sigstore bundles with the reference JS libraries.
//
//   node verify.mjs --bundle FILE --key PUBLIC.pem --digest sha256:HEX [--predicate-type URI]
//
// Offline: the only trust material is the given public key (looked up by the
// bundle's key hint); no transparency log, CT log or timestamp is required.
// For a DSSE bundle the in-toto statement must name the digest as a subject.
// Exit 0 and one JSON line when verified; exit 1 with the reason otherwise
// (`verification failed: <error class> [<code>]: <message>`); exit 2 on bad arguments.
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { assertBundleLatest, bundleFromJSON } = require('@sigstore/bundle');
const { PublicKeyDetails } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const STATEMENT_TYPES = ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1'];

function options() {
  try {
    const { values } = parseArgs({
      options: {
        bundle: { type: 'string' },
        key: { type: 'string' },
        digest: { type: 'string' },
        'predicate-type': { type: 'string' },
      },
    });
    if (!values.bundle || !values.key || !values.digest) throw new Error('missing argument');
    return values;
  } catch (error) {
    console.error(`usage: verify.mjs --bundle FILE --key PUBLIC.pem --digest sha256:HEX [--predicate-type URI] (${error.message})`);
    process.exit(2);
  }
}

// Trust exactly one key, found under the hint cosign gives it: base64(sha256(SPKI DER)).
function trustOnly(pem) {
  const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  const hint = createHash('sha256').update(der).digest('base64');
  const root = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const keys = { [hint]: { rawBytes: der, keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256 } };
  return toTrustMaterial(root, keys);
}

function checkStatement(bundle, digest, predicateType) {
  if (bundle.content.$case !== 'dsseEnvelope') throw new Error('not a DSSE bundle');
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE) {
    throw new Error(`payload type ${envelope.payloadType} is not an in-toto statement`);
  }
  const statement = JSON.parse(envelope.payload.toString('utf8'));
  if (!STATEMENT_TYPES.includes(statement._type)) throw new Error('the payload is not an in-toto Statement');
  const [algorithm, encoded] = digest.split(':');
  const covered = (statement.subject || []).some((s) => s.digest && s.digest[algorithm] === encoded);
  if (!covered) throw new Error(`the statement's subjects do not include ${digest}`);
  if (predicateType && statement.predicateType !== predicateType) {
    throw new Error(`predicate type ${statement.predicateType}, expected ${predicateType}`);
  }
  return statement;
}

function main() {
  const args = options();
  try {
    const bundle = bundleFromJSON(JSON.parse(readFileSync(args.bundle, 'utf8')));
    assertBundleLatest(bundle);
    const verifier = new Verifier(trustOnly(readFileSync(args.key, 'utf8')), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    });
    verifier.verify(toSignedEntity(bundle));
    const statement = checkStatement(bundle, args.digest, args['predicate-type']);
    const subjects = statement.subject.map((s) => s.name);
    console.log(JSON.stringify({ verified: true, predicateType: statement.predicateType, subjects }));
  } catch (error) {
    // The class name tells the library's refusals (VerificationError, with a code) from
    // this script's own checks (Error): tests assert on which of the two refused.
    console.error(`verification failed: ${error.name}${error.code ? ` ${error.code}` : ''}: ${error.message}`);
    process.exit(1);
  }
}

main();
