import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { SignJWT, decodeJwt, importJWK } from 'jose';
import { AssertionError, createAssertionSigner, createAssertionVerifier, INTERNAL_ISSUER, audienceFor } from './internal-auth.js';
import { generateJwkPair, type KeyPairJwk } from './keys.js';

describe('internal assertion', () => {
  let router: KeyPairJwk;
  let attacker: KeyPairJwk;
  beforeAll(async () => {
    router = await generateJwkPair('EdDSA');
    attacker = await generateJwkPair('EdDSA');
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });
  const identity = { userId: 'alice', role: 'STUDENT' as const };

  // The assertion carries the identity only: the request id travels beside it,
  // unsigned, in the X-Request-ID header (router/src/datasource.ts).
  it('round-trips the identity, and only the identity, for the subgraph it was signed for', async () => {
    const signer = await createAssertionSigner(router.privateJwk);
    const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
    const token = await signer.sign({ identity, subgraph: 'rag' });
    expect(await verifier.verify(token)).toStrictEqual({ identity });
    // Another user and role come back as themselves, not as a fixed identity.
    const teacher = { userId: 'bob@school.example', role: 'TEACHER' as const };
    expect(await verifier.verify(await signer.sign({ identity: teacher, subgraph: 'rag' }))).toStrictEqual({ identity: teacher });

    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: INTERNAL_ISSUER, aud: audienceFor('rag'), sub: 'alice', role: 'STUDENT' });
    expect(claims.exp! - claims.iat!).toBe(60);
    expect(Object.keys(claims).sort()).toStrictEqual(['aud', 'exp', 'iat', 'iss', 'role', 'sub']);
  });

  it('reuses a token for the same user and subgraph during the first half of its life, not for another', async () => {
    const signer = await createAssertionSigner(router.privateJwk);
    const start = Date.now();
    const now = jest.spyOn(Date, 'now').mockReturnValue(start);
    const first = await signer.sign({ identity, subgraph: 'rag' });
    expect(await signer.sign({ identity, subgraph: 'rag' })).toBe(first);
    expect(await signer.sign({ identity, subgraph: 'chat' })).not.toBe(first);
    expect(await signer.sign({ identity: { userId: 'alice', role: 'TEACHER' }, subgraph: 'rag' })).not.toBe(first);
    expect(await signer.sign({ identity: { userId: 'bob', role: 'STUDENT' }, subgraph: 'rag' })).not.toBe(first);

    now.mockReturnValue(start + 29_999);
    expect(await signer.sign({ identity, subgraph: 'rag' })).toBe(first);
    now.mockReturnValue(start + 30_000);
    const second = await signer.sign({ identity, subgraph: 'rag' });
    expect(second).not.toBe(first);
    expect(decodeJwt(second).iat! - decodeJwt(first).iat!).toBe(30);
  });

  it('refuses an assertion signed for another subgraph', async () => {
    const token = await (await createAssertionSigner(router.privateJwk)).sign({ identity, subgraph: 'chat' });
    await expect((await createAssertionVerifier(router.publicJwk, 'rag')).verify(token)).rejects.toThrow(AssertionError);
  });

  it('refuses an assertion signed with another key, and a missing one', async () => {
    const token = await (await createAssertionSigner(attacker.privateJwk)).sign({ identity, subgraph: 'rag' });
    const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
    await expect(verifier.verify(token)).rejects.toThrow(AssertionError);
    await expect(verifier.verify(undefined)).rejects.toThrow(/missing/);
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
    const expired = verifier.verify(
      await base()
        .setIssuedAt(now - 300)
        .setExpirationTime(now - 200)
        .sign(key),
    );
    await expect(expired).rejects.toThrow(AssertionError);
    await expect(expired).rejects.toThrow(/"exp" claim/);
    const badRole = await new SignJWT({ role: 'ROOT' })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer(INTERNAL_ISSUER)
      .setAudience(audienceFor('rag'))
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(key);
    await expect(verifier.verify(badRole)).rejects.toThrow(/role/);
  });

  it('trusts a verified assertion again without re-verifying only until it expires', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const key = await importJWK(router.privateJwk, 'EdDSA');
      const verifier = await createAssertionVerifier(router.publicJwk, 'rag');
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ role: 'STUDENT' })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer(INTERNAL_ISSUER)
        .setAudience(audienceFor('rag'))
        .setSubject('alice')
        .setIssuedAt(now)
        .setExpirationTime(now + 10)
        .sign(key);
      expect(await verifier.verify(token)).toStrictEqual({ identity: { userId: 'alice', role: 'STUDENT' } });
      expect(await verifier.verify(token)).toStrictEqual({ identity: { userId: 'alice', role: 'STUDENT' } });
      // Past exp plus the clock tolerance (5 s): refused, though it was verified before.
      jest.setSystemTime((now + 16) * 1000);
      await expect(verifier.verify(token)).rejects.toThrow(/"exp" claim/);
      // A tampered copy of a remembered token is verified on its own, and refused.
      jest.setSystemTime(now * 1000);
      expect(await verifier.verify(token)).toStrictEqual({ identity: { userId: 'alice', role: 'STUDENT' } });
      // One character in the middle of the signature changed (its last characters may carry
      // unused bits: replacing them could leave the decoded signature as it was).
      const at = token.length - 20;
      const tampered = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
      await expect(verifier.verify(tampered)).rejects.toThrow(AssertionError);
    } finally {
      jest.useRealTimers();
    }
  });
});
