import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import { SignJWT, importJWK } from 'jose';
import { AssertionError, createAssertionSigner, createAssertionVerifier, INTERNAL_ISSUER, audienceFor } from './internal-auth.js';
import { generateJwkPair, type KeyPairJwk } from './keys.js';

describe('internal assertion', () => {
  let router: KeyPairJwk;
  let attacker: KeyPairJwk;
  before(async () => {
    router = await generateJwkPair('EdDSA');
    attacker = await generateJwkPair('EdDSA');
  });
  const identity = { userId: 'alice', role: 'STUDENT' as const };

  it('round-trips identity and request id for the subgraph it was signed for', async () => {
    const signer = await createAssertionSigner(router.privateJwk);
    const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
    const token = await signer.sign({ identity, subgraph: 'rag' });
    assert.deepEqual(await verifier.verify(token), { identity });
  });

  it('refuses an assertion signed for another subgraph', async () => {
    const token = await (await createAssertionSigner(router.privateJwk)).sign({ identity, subgraph: 'chat' });
    await assert.rejects((await createAssertionVerifier(router.publicJwk, 'rag')).verify(token), AssertionError);
  });

  it('refuses an assertion signed with another key, and a missing one', async () => {
    const token = await (await createAssertionSigner(attacker.privateJwk)).sign({ identity, subgraph: 'rag' });
    const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
    await assert.rejects(verifier.verify(token), AssertionError);
    await assert.rejects(verifier.verify(undefined), /missing/);
  });

  it('refuses an expired assertion and one with an unknown role', async () => {
    const key = await importJWK(router.privateJwk, 'EdDSA');
    const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
    const base = () =>
      new SignJWT({ role: 'STUDENT' })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer(INTERNAL_ISSUER)
        .setAudience(audienceFor('rag'))
        .setSubject('alice');
    const now = Math.floor(Date.now() / 1000);
    await assert.rejects(
      verifier.verify(
        await base()
          .setIssuedAt(now - 300)
          .setExpirationTime(now - 200)
          .sign(key),
      ),
      AssertionError,
    );
    const badRole = await new SignJWT({ role: 'ROOT' })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer(INTERNAL_ISSUER)
      .setAudience(audienceFor('rag'))
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(key);
    await assert.rejects(verifier.verify(badRole), /role/);
  });
});
