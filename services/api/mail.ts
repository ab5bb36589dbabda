import type { Queryable } from '../shared/db.js';
import type { Logger } from '../shared/log.js';

/**
 * Outgoing mail (docs/design.md, "Quotes"). Senders hand a message to a transport inside the
 * transaction of the change it announces, so a rolled-back change sends nothing. The default
 * transport needs no mail server: it records the message in `mail_outbox` (where an SMTP sender, once
 * configured, delivers from and marks `sent_at`) and writes a line to the log — recipient, subject and
 * outbox id; never the body, which may hold prices or personal data.
 */

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** The object the message is about (`quote`, its id), for finding its mail later. */
  related?: { type: string; id: string };
}

export interface MailTransport {
  /** Queues or sends `message` as part of the transaction on `db`; returns its id. */
  send(db: Queryable, message: MailMessage): Promise<{ id: string }>;
}

export function outboxMailTransport(log: Logger): MailTransport {
  return {
    async send(db, message) {
      const { rows } = await db.query<{ id: string }>({
        name: 'fieldops_mail_outbox',
        text: `insert into mail_outbox (tenant_id, to_address, subject, body, related_type, related_id)
               values (app_tenant(), $1, $2, $3, $4, $5) returning id`,
        values: [message.to, message.subject, message.text, message.related?.type ?? null, message.related?.id ?? null],
      });
      const id = rows[0]!.id;
      log.info({ mail_id: id, to: message.to, subject: message.subject, related: message.related }, 'mail queued in the outbox');
      return { id };
    },
  };
}
