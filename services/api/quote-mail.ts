import type { MailMessage } from './mail.js';
import type { QuoteLine } from './quote-totals.js';

/** What the email shows of a quote. */
export interface QuoteForMail {
  id: string;
  number: number;
  revision: number;
  title: string | null;
  currency: string;
  valid_until: Date | string | null;
  items: QuoteLine[];
  subtotal: number;
  tax_total: number;
  total: number;
}

/** The email that carries a quote to its client: the lines and totals as plain text. */
export function quoteMail(quote: QuoteForMail, to: string, organization: string, message: string | null): MailMessage {
  const money = (minor: number) => formatMoney(minor, quote.currency);
  const lines = quote.items.map((item) =>
    `  ${item.description} (${item.kind}): ${item.quantity} × ${money(item.unit_price)} = ${money(item.subtotal)}, tax ${item.tax_rate}% ${money(item.tax)}`);
  const text = [
    ...(message ? [message, ''] : []),
    `Quote ${quote.number}${quote.revision > 1 ? ` (revision ${quote.revision})` : ''}${quote.title ? `: ${quote.title}` : ''}`,
    '',
    ...lines,
    '',
    `Subtotal: ${money(quote.subtotal)}`,
    `Tax:      ${money(quote.tax_total)}`,
    `Total:    ${money(quote.total)}`,
    ...(quote.valid_until ? ['', `Valid until ${new Date(quote.valid_until).toISOString().slice(0, 10)}.`] : []),
    '',
    organization,
  ].join('\n');
  return { to, subject: `Quote ${quote.number} from ${organization}`, text, related: { type: 'quote', id: quote.id } };
}

/** Minor units as the currency writes them (`123456`, `EUR` → `EUR 1,234.56`), without floats. */
export function formatMoney(minor: number, currency: string): string {
  const digits = currencyDigits(currency);
  const scale = 10n ** BigInt(digits);
  const value = BigInt(minor);
  const sign = value < 0n ? '-' : '';
  const abs = value < 0n ? -value : value;
  const whole = (abs / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = digits > 0 ? `.${(abs % scale).toString().padStart(digits, '0')}` : '';
  return `${currency} ${sign}${whole}${fraction}`;
}

/** Minor-unit digits of an ISO 4217 currency (2 for EUR, 0 for JPY, 3 for KWD); 2 when unknown. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}
