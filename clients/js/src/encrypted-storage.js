// An encrypted storage adapter for supabase-js's auth client: what react-native-encrypted-storage
// or expo-secure-store give an app. Each value is sealed with AES-256-GCM under a key that is not
// stored with the blobs (here a non-extractable WebCrypto key held in memory; on a phone, the
// Keychain/Keystore), with a fresh 96-bit nonce per write and the item's name as associated data,
// so a blob cannot be moved to another name. `backing` is where the sealed blobs live (a Map here;
// a file or AsyncStorage in an app): it never sees a token in clear.
import { webcrypto } from 'node:crypto';

const { subtle } = webcrypto;
const enc = new TextEncoder();
const dec = new TextDecoder();

export async function newStorageKey() {
  return subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

export function encryptedStorage(key, backing = new Map()) {
  return {
    backing,
    async getItem(name) {
      const sealed = backing.get(name);
      if (sealed === undefined) return null;
      const bytes = Buffer.from(sealed, 'base64');
      const iv = bytes.subarray(0, 12);
      const plain = await subtle.decrypt(
        { name: 'AES-GCM', iv, additionalData: enc.encode(name) }, key, bytes.subarray(12));
      return dec.decode(plain);
    },
    async setItem(name, value) {
      const iv = webcrypto.getRandomValues(new Uint8Array(12));
      const sealed = await subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: enc.encode(name) }, key, enc.encode(value));
      backing.set(name, Buffer.concat([Buffer.from(iv), Buffer.from(sealed)]).toString('base64'));
    },
    async removeItem(name) {
      backing.delete(name);
    },
  };
}
