import type { Queryable } from '../../shared/db.js';
import { conflict } from '../../shared/contracts/errors.js';
import { createHistory, type Actor } from '../history.js';
import type { Image } from '../images.js';
import type { MailTransport } from '../mail.js';
import { recordEvent } from '../outbox.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { assertVersion, type Precondition } from '../preconditions.js';
import { quoteMail } from '../quote-mail.js';
import { effectiveStage, nextStage, type QuoteAction, type QuoteStage } from '../quote-stages.js';
import { computeQuoteTotals, type QuoteLine, type QuoteLineInput } from '../quote-totals.js';
import { checkReferences } from '../references.js';
import { SqlParams } from '../sql.js';

export interface QuoteAcceptance {
  signed_by: string;
  signed_at: Date;
  ip: string | null;
  signature: { content_type: string; size: number };
}

export interface Quote {
  id: string;
  number: number;
  revision: number;
  client_id: string | null;
  title: string | null;
  notes: string | null;
  currency: string;
  valid_until: Date | null;
  stage: QuoteStage;
  items: QuoteLine[];
  subtotal: number;
  tax_total: number;
  total: number;
  sent_at: Date | null;
  sent_to: string | null;
  viewed_at: Date | null;
  accepted_at: Date | null;
  rejected_at: Date | null;
  rejection_reason: string | null;
  expired_at: Date | null;
  acceptance: QuoteAcceptance | null;
  work_order_id: string | null;
  created_by: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** What a client sets on a quote (all of it on create; a draft's PATCH or an amendment may change any). */
export interface QuoteFields {
  client_id?: string | null;
  title?: string | null;
  notes?: string | null;
  currency?: string;
  valid_until?: Date | null;
  items?: QuoteLineInput[];
}

export interface QuoteFilters {
  stage?: QuoteStage;
  client_id?: string;
  work_order_id?: string;
  from?: string;
  to?: string;
}

export interface QuoteRevision {
  revision: number;
  superseded_at: Date;
  superseded_by: string | null;
  quote: Quote;
}

export const QUOTE_SORT_FIELDS = ['created_at', 'updated_at', 'number', 'total', 'valid_until'] as const;
export const DEFAULT_CURRENCY = 'USD';

/** The fields whose changes the history records. */
const HISTORY_FIELDS = ['revision', 'stage', 'client_id', 'title', 'notes', 'currency', 'valid_until', 'items', 'subtotal', 'tax_total',
  'total', 'sent_to', 'rejection_reason', 'work_order_id'] as const;

/** An open quote past its date reads as expired before the job writes it (quote-stages.ts). */
const EXPIRED_NOW = `(q.stage in ('sent', 'viewed') and q.valid_until <= now())`;
const SELECT = `q.id, q.number, q.revision, q.client_id, q.title, q.notes, q.currency, q.valid_until,
  case when ${EXPIRED_NOW} then 'expired' else q.stage end as stage,
  q.items, q.subtotal, q.tax_total, q.total, q.sent_at, q.sent_to, q.viewed_at, q.accepted_at, q.rejected_at, q.rejection_reason,
  case when ${EXPIRED_NOW} then q.valid_until else q.expired_at end as expired_at,
  q.work_order_id, q.created_by, q.version, q.created_at, q.updated_at,
  s.signed_by, s.signed_at, host(s.signed_ip) as signed_ip, s.signature_type, octet_length(s.signature) as signature_size`;
const FROM = 'quotes q left join quote_signatures s on s.quote_id = q.id and s.revision = q.revision';

interface QuoteRow extends Omit<Quote, 'number' | 'subtotal' | 'tax_total' | 'total' | 'acceptance'> {
  number: string;
  subtotal: string;
  tax_total: string;
  total: string;
  signed_by: string | null;
  signed_at: Date | null;
  signed_ip: string | null;
  signature_type: string | null;
  signature_size: number | null;
}

/** The row as it stands, locked for the action (stage as stored, plus what the action checks). */
interface LockedQuote {
  stage: QuoteStage;
  valid_until: Date | null;
  version: number;
  work_order_id: string | null;
}

export interface QuoteContext {
  actor: Actor;
  mail: MailTransport;
}

/** Quotes of the tenant set on `db` (docs/design.md, "Quotes"). */
export function createQuoteRepository(db: Queryable, context: QuoteContext) {
  const history = createHistory(db, 'quote');

  const find = async (id: string): Promise<Quote | null> => {
    const { rows } = await db.query<QuoteRow>({ name: 'fieldops_quote_find', text: `select ${SELECT} from ${FROM} where q.id = $1`, values: [id] });
    return rows[0] ? toQuote(rows[0]) : null;
  };

  /**
   * Locks the quote for an action and checks If-Match and the stage move; answers the stage now (an
   * open quote past its date is expired). Null when there is no such quote.
   */
  const lockFor = async (id: string, action: QuoteAction, precondition: Precondition | null): Promise<(LockedQuote & { next: QuoteStage }) | null> => {
    const { rows } = await db.query<LockedQuote>('select stage, valid_until, version, work_order_id from quotes where id = $1 for update', [id]);
    const row = rows[0];
    if (!row) return null;
    assertVersion(precondition, row.version, 'quote');
    const stage = effectiveStage(row.stage, row.valid_until);
    return { ...row, stage, next: nextStage(action, stage) };
  };

  /** Records the change in the history and answers the quote as it is now. */
  const changed = async (action: string, before: Quote | null, id: string): Promise<Quote> => {
    const after = (await find(id))!;
    await history.record({ action, actor: context.actor, before, after, fields: HISTORY_FIELDS });
    return after;
  };

  const checkClient = (clientId: string | null | undefined) =>
    checkReferences(db, [{ path: 'client_id', table: 'clients', id: clientId, what: 'client' }]);

  return {
    find,

    list(filters: QuoteFilters, query: ListQuery): Promise<ListResult<Quote>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.stage) where.push(`(case when ${EXPIRED_NOW} then 'expired' else q.stage end) = ${params.add(filters.stage)}`);
      if (filters.client_id) where.push(`q.client_id = ${params.add(filters.client_id)}`);
      if (filters.work_order_id) where.push(`q.work_order_id = ${params.add(filters.work_order_id)}`);
      if (filters.from) where.push(`q.created_at >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`q.created_at < ${params.add(filters.to)}`);
      return listPage<QuoteRow>(db, {
        select: SELECT,
        from: FROM,
        where,
        params,
        id: 'q.id',
        sortable: {
          created_at: 'q.created_at', updated_at: 'q.updated_at', number: 'q.number', total: 'q.total',
          valid_until: "coalesce(q.valid_until, 'infinity')",
        },
        defaultSort: '-created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toQuote) }));
    },

    async create(fields: QuoteFields & { items: QuoteLineInput[] }): Promise<Quote> {
      const totals = computeQuoteTotals(fields.items);
      await checkClient(fields.client_id);
      const { rows } = await db.query<{ id: string }>({
        name: 'fieldops_quote_create',
        text: `with n as (
                 insert into tenant_counters as c (tenant_id, name, value) values (app_tenant(), 'quote', 1)
                 on conflict (tenant_id, name) do update set value = c.value + 1 returning value)
               insert into quotes (tenant_id, number, client_id, title, notes, currency, valid_until, items, subtotal, tax_total, total, created_by)
               select app_tenant(), n.value, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 from n returning id`,
        values: [fields.client_id ?? null, fields.title ?? null, fields.notes ?? null, fields.currency ?? DEFAULT_CURRENCY,
          fields.valid_until ?? null, JSON.stringify(totals.items), totals.subtotal, totals.tax_total, totals.total, context.actor.userId],
      });
      const quote = await changed('create', null, rows[0]!.id);
      await recordEvent(db, context.actor.tenantId, 'quote.created', quote);
      return quote;
    },

    /** Edits a draft in place; anything later is amended with a new revision instead. */
    async update(id: string, changes: QuoteFields, precondition: Precondition | null): Promise<Quote | null> {
      if (!(await lockFor(id, 'edit', precondition))) return null;
      const before = (await find(id))!;
      await checkClient(changes.client_id);
      await writeFields(db, id, changes);
      return changed('update', before, id);
    },

    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await lockFor(id, 'delete', precondition))) return false;
      await db.query('delete from quotes where id = $1', [id]);
      return true;
    },

    /**
     * Sends the quote: the email goes through the mail transport to `to`, or the client's address; a
     * quote with neither is marked sent all the same (handed over in person) and `sent_to` stays null.
     */
    async send(id: string, input: { to?: string; message?: string }, precondition: Precondition | null): Promise<Quote | null> {
      const locked = await lockFor(id, 'send', precondition);
      if (!locked) return null;
      if (locked.valid_until && locked.valid_until.getTime() <= Date.now()) {
        throw conflict('the quote\'s valid_until has passed: set a later date before sending it', [
          { path: 'valid_until', message: 'has passed' },
        ]);
      }
      const before = (await find(id))!;
      const { rows } = await db.query<{ client_email: string | null; organization: string }>(
        `select (select email from clients where id = $1) as client_email, (select name from organizations where id = app_tenant()) as organization`,
        [before.client_id],
      );
      const to = input.to ?? rows[0]?.client_email ?? null;
      await db.query(`update quotes set stage = 'sent', sent_at = now(), sent_to = $2, updated_at = now() where id = $1`, [id, to]);
      const quote = await changed('send', before, id);
      await recordEvent(db, context.actor.tenantId, 'quote.sent', quote);
      // Queued in this transaction too: if the transport refuses it, the quote stays a draft and no event goes out.
      if (to) await context.mail.send(db, quoteMail(quote, to, rows[0]?.organization ?? '', input.message ?? null));
      return quote;
    },

    /** The client has seen the quote (a portal, or the quote shown on site): `viewed`, the first time kept. */
    async view(id: string, precondition: Precondition | null): Promise<Quote | null> {
      const locked = await lockFor(id, 'view', precondition);
      if (!locked) return null;
      if (locked.stage === 'viewed') return find(id);
      const before = (await find(id))!;
      await db.query(`update quotes set stage = 'viewed', viewed_at = now(), updated_at = now() where id = $1`, [id]);
      return changed('view', before, id);
    },

    /** The client's acceptance with a digital signature: signer, image, address and time are kept with the revision. */
    async accept(id: string, input: { signedBy: string; signature: Image; ip: string | null }, precondition: Precondition | null): Promise<Quote | null> {
      if (!(await lockFor(id, 'accept', precondition))) return null;
      const before = (await find(id))!;
      await db.query(
        `insert into quote_signatures (tenant_id, quote_id, revision, signed_by, signature, signature_type, signed_ip, recorded_by)
         values (app_tenant(), $1, $2, $3, $4, $5, $6, $7)`,
        [id, before.revision, input.signedBy, input.signature.bytes, input.signature.contentType, input.ip, context.actor.userId],
      );
      await db.query(`update quotes set stage = 'accepted', accepted_at = now(), updated_at = now() where id = $1`, [id]);
      const quote = await changed('accept', before, id);
      await recordEvent(db, context.actor.tenantId, 'quote.accepted', quote);
      return quote;
    },

    async reject(id: string, reason: string | null, precondition: Precondition | null): Promise<Quote | null> {
      if (!(await lockFor(id, 'reject', precondition))) return null;
      const before = (await find(id))!;
      await db.query(`update quotes set stage = 'rejected', rejected_at = now(), rejection_reason = $2, updated_at = now() where id = $1`, [id, reason]);
      return changed('reject', before, id);
    },

    /**
     * An amendment: the current revision is kept as it stands (lines, totals, stage, signature), and
     * the quote continues as the next revision, a draft with the changes applied, to be sent again.
     */
    async revise(id: string, changes: QuoteFields, precondition: Precondition | null): Promise<Quote | null> {
      const { rows } = await db.query<{ version: number }>('select version from quotes where id = $1 for update', [id]);
      if (!rows[0]) return null;
      assertVersion(precondition, rows[0].version, 'quote');
      const before = (await find(id))!;
      await checkClient(changes.client_id);
      await db.query(
        `insert into quote_revisions (tenant_id, quote_id, revision, snapshot, superseded_by) values (app_tenant(), $1, $2, $3, $4)`,
        [id, before.revision, JSON.stringify(before), context.actor.userId],
      );
      await db.query(
        `update quotes set revision = revision + 1, stage = 'draft', sent_at = null, sent_to = null, viewed_at = null, accepted_at = null,
                rejected_at = null, rejection_reason = null, expired_at = null, updated_at = now()
          where id = $1`,
        [id],
      );
      await writeFields(db, id, changes);
      return changed('revise', before, id);
    },

    revisions(id: string, query: ListQuery): Promise<ListResult<QuoteRevision>> {
      const params = new SqlParams();
      return listPage<{ revision: number; superseded_at: Date; superseded_by: string | null; quote: Quote }>(db, {
        select: 'r.revision, r.superseded_at, r.superseded_by, r.snapshot as quote',
        from: 'quote_revisions r',
        where: [`r.quote_id = ${params.add(id)}`],
        params,
        id: 'r.revision',
        sortable: { revision: 'r.revision' },
        defaultSort: 'revision',
      }, query);
    },

    /** One revision: a superseded one as it was kept, or the current one. */
    async revision(id: string, revision: number): Promise<Quote | null> {
      const current = await find(id);
      if (!current) return null;
      if (current.revision === revision) return current;
      const { rows } = await db.query<{ snapshot: Quote }>('select snapshot from quote_revisions where quote_id = $1 and revision = $2', [id, revision]);
      return rows[0]?.snapshot ?? null;
    },

    /** The acceptance signature of a revision (the current one by default), as stored. */
    async signature(id: string, revision?: number): Promise<{ bytes: Buffer; contentType: string } | null> {
      const { rows } = await db.query<{ signature: Buffer; signature_type: string }>(
        `select s.signature, s.signature_type from quote_signatures s join quotes q on q.id = s.quote_id
          where s.quote_id = $1 and s.revision = coalesce($2, q.revision)`,
        [id, revision ?? null],
      );
      return rows[0] ? { bytes: rows[0].signature, contentType: rows[0].signature_type } : null;
    },

    /**
     * Checks that an accepted quote may become a work order (once), locking it; the caller makes the
     * order and then `linkWorkOrder`s it.
     */
    async lockForConversion(id: string, precondition: Precondition | null): Promise<Quote | null> {
      const locked = await lockFor(id, 'convert', precondition);
      if (!locked) return null;
      if (locked.work_order_id) {
        throw conflict('the quote was converted already', [{ path: 'work_order_id', message: `is ${locked.work_order_id}` }]);
      }
      return find(id);
    },

    async linkWorkOrder(before: Quote, workOrderId: string): Promise<Quote> {
      await db.query('update quotes set work_order_id = $2, updated_at = now() where id = $1', [before.id, workOrderId]);
      return changed('convert', before, before.id);
    },

    history: (id: string, query: ListQuery) => history.list<Quote>(id, query),
  };
}

export type QuoteRepository = ReturnType<typeof createQuoteRepository>;

/** Writes the given fields (lines with their totals recomputed); absent fields stay as they are. */
async function writeFields(db: Queryable, id: string, changes: QuoteFields): Promise<void> {
  const params = new SqlParams();
  const idParam = params.add(id);
  const sets = ['updated_at = now()'];
  if (changes.client_id !== undefined) sets.push(`client_id = ${params.add(changes.client_id)}`);
  if (changes.title !== undefined) sets.push(`title = ${params.add(changes.title)}`);
  if (changes.notes !== undefined) sets.push(`notes = ${params.add(changes.notes)}`);
  if (changes.currency !== undefined) sets.push(`currency = ${params.add(changes.currency)}`);
  if (changes.valid_until !== undefined) sets.push(`valid_until = ${params.add(changes.valid_until)}`);
  if (changes.items !== undefined) {
    const totals = computeQuoteTotals(changes.items);
    sets.push(`items = ${params.add(JSON.stringify(totals.items))}`, `subtotal = ${params.add(totals.subtotal)}`,
      `tax_total = ${params.add(totals.tax_total)}`, `total = ${params.add(totals.total)}`);
  }
  await db.query(`update quotes set ${sets.join(', ')} where id = ${idParam}`, params.values);
}

function toQuote(row: QuoteRow): Quote {
  return {
    id: row.id,
    number: Number(row.number),
    revision: row.revision,
    client_id: row.client_id,
    title: row.title,
    notes: row.notes,
    currency: row.currency,
    valid_until: row.valid_until,
    stage: row.stage,
    items: row.items,
    subtotal: Number(row.subtotal),
    tax_total: Number(row.tax_total),
    total: Number(row.total),
    sent_at: row.sent_at,
    sent_to: row.sent_to,
    viewed_at: row.viewed_at,
    accepted_at: row.accepted_at,
    rejected_at: row.rejected_at,
    rejection_reason: row.rejection_reason,
    expired_at: row.expired_at,
    acceptance: row.signed_by && row.signed_at && row.signature_type
      ? { signed_by: row.signed_by, signed_at: row.signed_at, ip: row.signed_ip, signature: { content_type: row.signature_type, size: row.signature_size ?? 0 } }
      : null,
    work_order_id: row.work_order_id,
    created_by: row.created_by,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}


declare module '../outbox.js' {
  interface BusinessEventMap {
    'quote.created': Quote;
    'quote.sent': Quote;
    'quote.accepted': Quote;
  }
}
