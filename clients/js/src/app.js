// The seed's app, as supabase-js code: one client per signed-in person, its session kept in
// encrypted storage. Node 20 has no global WebSocket: supabase-js's realtime gets `ws`.
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { encryptedStorage, newStorageKey } from './encrypted-storage.js';

export async function newApp(url, publishableKey) {
  const storage = encryptedStorage(await newStorageKey());
  const supabase = createClient(url, publishableKey, {
    auth: { storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket },
  });
  return { supabase, storage };
}
