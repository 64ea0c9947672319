// One e-mail's whole story: its journey across servers and queues (one card per hop, with how each
// hop was reached), every recipient's attempts and final status, the raw lines, its NDRs.

import type { Hop, HopDetail, HopRecipient, MessageDetail } from '../api';
import { useApi } from '../hooks';
import { bare, formatBytes, formatDuration, formatTime } from '../format';
import { ErrorBox, Loading, Section, StatusBadge, CopyLink, Empty } from '../components/ui';
import { LogTable } from '../components/loglines';

const LINK_TEXT: Record<string, string> = {
  relay: 'relayed by SMTP',
  content_filter: 'through a content filter',
  reinjection: 're-injected',
  notification: 'notification (bounce/DSN)',
};

export function MessagePage({ id }: { id: string }) {
  const detail = useApi<MessageDetail>(`/messages/${encodeURIComponent(id)}`);
  const d = detail.data;
  const m = d?.message;
  return (
    <div class="page">
      <h1>Message {m?.message_id ? <span class="mono">{bare(m.message_id)}</span> : m?.queue_id ?? id}</h1>
      <ErrorBox error={detail.error} />
      <Loading when={detail.loading} />
      {d && m && (
        <>
          <Section title="Summary" actions={<CopyLink href={`/messages/${encodeURIComponent(id)}`} label="Copy permalink" />}>
            <dl class="facts">
              <dt>Sender</dt>
              <dd class="addr">{m.sender || '<>'}</dd>
              <dt>Recipients</dt>
              <dd class="addr">{m.recipients.map((r) => r.address).join(', ')}</dd>
              <dt>State</dt>
              <dd>
                <StatusBadge value={m.state} /> {m.state_reason ?? ''}
              </dd>
              <dt>Flow</dt>
              <dd>{m.flow ?? ''}</dd>
              <dt>First seen</dt>
              <dd>{formatTime(m.first_seen)}</dd>
              <dt>Last seen</dt>
              <dd>{formatTime(m.last_seen)}</dd>
              <dt>Size</dt>
              <dd>{formatBytes(m.size)}</dd>
              <dt>Client</dt>
              <dd>{[m.client_name, m.client_ip && `[${m.client_ip}]`, m.client_country].filter(Boolean).join(' ')}</dd>
            </dl>
          </Section>
          <Section title={`Journey (${d.journey.length} hops)`} id="journey">
            {d.journey.length === 0 && <Empty>No hop recorded.</Empty>}
            <ol class="journey" aria-label="Journey">
              {d.journey.map((hop, i) => (
                <HopCard hop={hop} index={i} key={hop.restricted ? `restricted-${i}` : hop.id} />
              ))}
            </ol>
          </Section>
          {d.ndrs.length > 0 && (
            <Section title="Non-delivery reports">
              <ul>
                {d.ndrs.map((n) => (
                  <li key={n.id}>
                    <a href={`/ndrs/${encodeURIComponent(n.id)}`}>
                      {formatTime(n.received_at)} from {n.reporting_mta ?? n.server}:{' '}
                      {n.failed_recipients.map((r) => `${r.address ?? ''} ${r.status ?? ''}`).join(', ')}
                    </a>
                  </li>
                ))}
              </ul>
            </Section>
          )}
          {d.greylist.length > 0 && (
            <Section title="Greylisting">
              <ul>
                {d.greylist.map((g, i) => (
                  <li key={i}>
                    {formatTime(g.ts)} {g.client_ip} {g.sender} → {g.recipient}: <StatusBadge value={g.decision} />
                    {g.delay_remaining ? ` (${formatDuration(g.delay_remaining)} left)` : ''}
                  </li>
                ))}
              </ul>
            </Section>
          )}
          <Section title={`Log lines (${d.lines.length}${d.lines_truncated ? ', the first ones' : ''})`} id="lines">
            <LogTable rows={d.lines} label="Raw log lines" />
          </Section>
        </>
      )}
    </div>
  );
}

function HopCard({ hop, index }: { hop: Hop; index: number }) {
  return (
    <li class="hop" aria-label={`Hop ${index + 1}: ${hop.server}${hop.restricted ? '' : ` ${hop.queue_id}`}`}>
      {hop.link_kind && <div class="link-kind">↓ {LINK_TEXT[hop.link_kind] ?? hop.link_kind}</div>}
      {hop.restricted ? (
        <div class="hop-card">
          <div class="hop-head">
            <span class="hop-server">{hop.server}</span>
            <span class="muted">outside what you may see</span>
          </div>
        </div>
      ) : (
        <HopBody hop={hop} />
      )}
    </li>
  );
}

function HopBody({ hop }: { hop: HopDetail & { server: string } }) {
  return (
    <div class="hop-card">
      <div class="hop-head">
        <span class="hop-server">{hop.server}</span>
        <span class="mono">{hop.queue_id}</span>
        <StatusBadge value={hop.state} />
        {hop.state_reason && <span class="muted">{hop.state_reason}</span>}
        {hop.flow && <span class="tag">{hop.flow}</span>}
        <span class="muted">
          {formatTime(hop.first_seen)} → {formatTime(hop.last_seen)}
        </span>
      </div>
      <div class="hop-meta">
        from <span class="addr">{hop.sender || '<>'}</span>
        {hop.size ? `, ${formatBytes(hop.size)}` : ''}
        {hop.client_ip || hop.client_name
          ? `, client ${[hop.client_name, hop.client_ip && `[${hop.client_ip}]`].filter(Boolean).join(' ')}`
          : ''}
      </div>
      <table class="recipients" aria-label={`Recipients at ${hop.server} ${hop.queue_id}`}>
        <thead>
          <tr>
            <th scope="col">Recipient</th>
            <th scope="col">Status</th>
            <th scope="col">Relay</th>
            <th scope="col">DSN</th>
            <th scope="col">Delay</th>
            <th scope="col">Reply</th>
          </tr>
        </thead>
        <tbody>
          {hop.recipients.map((r, i) => (
            <RecipientRows r={r} key={i} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RecipientRows({ r }: { r: HopRecipient }) {
  return (
    <>
      <tr>
        <td class="addr">
          {r.address}
          {r.orig_address && r.orig_address !== r.address ? <span class="muted"> (for {r.orig_address})</span> : ''}
        </td>
        <td>
          <StatusBadge value={r.status} />
        </td>
        <td class="addr">{r.relay ?? ''}</td>
        <td class="mono">{r.dsn ?? ''}</td>
        <td class="num">{formatDuration(r.delay)}</td>
        <td class="reply">{r.status_text ?? ''}</td>
      </tr>
      {r.attempts.length > 1 &&
        r.attempts.map((a, i) => (
          <tr class="attempt" key={i}>
            <td class="muted">attempt {i + 1}, {formatTime(a.ts)}</td>
            <td>
              <StatusBadge value={a.status} />
            </td>
            <td class="addr">{a.relay}</td>
            <td class="mono">{a.dsn}</td>
            <td class="num" title={a.delays.length > 0 ? `delays=${a.delays.join('/')}` : ''}>
              {formatDuration(a.delay)}
            </td>
            <td class="reply">{a.status_text}</td>
          </tr>
        ))}
    </>
  );
}
