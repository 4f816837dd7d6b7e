/**
 * Inbound reports as mail systems write them, for the DSN/ARF readers and the inbound listener.
 * Written by hand from the RFC examples (RFC 3464 appendix, RFC 5965 appendix B) and from the
 * shapes common MTAs and feedback loops send (Postfix, Exim, Exchange, Yahoo CFL), with the
 * addresses and ids a test needs filled in. Never produced by the code under test.
 */

/** Line ends made CRLF, as on the wire. */
const crlf = (s: string): string => s.replace(/\r?\n/g, '\r\n');

/** RFC 3464 appendix, "Simple DSN": a relay gave up after 5 days, Status 4.0.0. */
export const RFC3464_SIMPLE = crlf(`Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
To: <owner-info-mime@cs.utk.edu>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

   The original message was received at Sat, 2 Jul 1994 17:10:28 -0400
   from root@localhost

      ----- The following addresses had delivery problems -----
   <louisl@larry.slip.umd.edu>  (unrecoverable error)

      ----- Transcript of session follows -----
   <louisl@larry.slip.umd.edu>... Deferred: Connection timed out
           with larry.slip.umd.edu.
   Message could not be delivered for 5 days
   Message will be deleted from queue

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;louisl@larry.slip.umd.edu
Final-Recipient: rfc822;louisl@larry.slip.umd.edu
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]
--RAA14128.773615765/CS.UTK.EDU--
`);

/** RFC 3464 appendix, "Multi-Recipient DSN": two failed (5.0.0), one delayed; a folded Diagnostic-Code. */
export const RFC3464_MULTI = crlf(`Date: Fri, 8 Jul 1994 09:21:47 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Subject: Returned mail: User unknown
To: <owner-ups-mib@CS.UTK.EDU>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
              boundary="JAA13167.773673707/CS.UTK.EDU"

--JAA13167.773673707/CS.UTK.EDU
content-type: text/plain; charset=us-ascii

   ----- The following addresses had delivery problems -----
<arathib@vnet.ibm.com>  (unrecoverable error)
<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;arathib@vnet.ibm.com
Final-Recipient: rfc822;arathib@vnet.ibm.com
Action: failed
Status: 5.0.0 (permanent failure)
Diagnostic-Code: smtp; 550 'arathib@vnet.IBM.COM' is not a
  registered gateway user
Remote-MTA: dns; vnet.ibm.com

Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Action: delayed
Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)

Original-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Final-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 user unknown
Remote-MTA: dns; sdcc13.ucsd.edu

--JAA13167.773673707/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]
--JAA13167.773673707/CS.UTK.EDU--
`);

export interface BounceFill {
  /** The envelope sender of the original message (a VERP address, or the From address). */
  returnPath: string;
  /** The recipient that bounced. */
  rcpt: string;
  /** The original message's Message-ID, with brackets. */
  messageId: string;
  /** The report's own Message-ID, with brackets. */
  reportId: string;
}

/** Postfix's bounce: notification, delivery report with X-Postfix-Sender, undelivered message headers. */
export function postfixBounce(f: BounceFill): string {
  return crlf(`Return-Path: <>
Received: by relay.example.com (Postfix)
	id 3F1A2201B4; Thu,  3 Dec 2026 10:02:11 +0000 (UTC)
Date: Thu,  3 Dec 2026 10:02:11 +0000 (UTC)
From: MAILER-DAEMON@relay.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ${f.returnPath}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="3F1A2201B4.1764756131/relay.example.com"
Content-Transfer-Encoding: 8bit
Message-Id: ${f.reportId}

This is a MIME-encapsulated message.

--3F1A2201B4.1764756131/relay.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<${f.rcpt}>: host mx.example.org[192.0.2.25] said: 550 5.1.1
    <${f.rcpt}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--3F1A2201B4.1764756131/relay.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.com
X-Postfix-Queue-ID: 3F1A2201B4
X-Postfix-Sender: rfc822; ${f.returnPath}
Arrival-Date: Thu,  3 Dec 2026 10:02:09 +0000 (UTC)

Final-Recipient: rfc822; ${f.rcpt}
Original-Recipient: rfc822;${f.rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <${f.rcpt}>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F1A2201B4.1764756131/relay.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <${f.returnPath}>
Received: from app.example.com (app.example.com [192.0.2.10])
	by relay.example.com (Postfix) with ESMTP id 3F1A2201B4
	for <${f.rcpt}>; Thu,  3 Dec 2026 10:02:09 +0000 (UTC)
Date: Thu, 03 Dec 2026 10:02:08 +0000
From: mailwheel <noreply@example.com>
To: ${f.rcpt}
Subject: Your daily digest
Message-ID: ${f.messageId}
MIME-Version: 1.0

--3F1A2201B4.1764756131/relay.example.com--
`);
}

/** Exim 4's failure report (multipart/report since 4.9x): the whole original message returned. */
export function eximBounce(f: BounceFill, action: 'failed' | 'delayed' = 'failed', status = '5.0.0'): string {
  return crlf(`Return-path: <>
Envelope-to: ${f.returnPath}
Received: from Debian-exim by mx.exim.example with local (Exim 4.96)
	id 1tAbCd-000123-4E
	for ${f.returnPath}; Thu, 03 Dec 2026 10:05:00 +0000
X-Failed-Recipients: ${f.rcpt}
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mx.exim.example>
To: ${f.returnPath}
Content-Type: multipart/report; report-type=delivery-status; boundary=1764756300-eximdsn-123456789
MIME-Version: 1.0
Subject: Mail delivery failed: returning message to sender
Message-Id: ${f.reportId}
Date: Thu, 03 Dec 2026 10:05:00 +0000

--1764756300-eximdsn-123456789
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  ${f.rcpt}
    host mx.example.net [198.51.100.7]
    SMTP error from remote mail server after RCPT TO:<${f.rcpt}>:
    550 5.1.1 The email account that you tried to reach does not exist.

--1764756300-eximdsn-123456789
Content-type: message/delivery-status

Reporting-MTA: dns; mx.exim.example

Action: ${action}
Final-Recipient: rfc822;${f.rcpt}
Status: ${status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist.

--1764756300-eximdsn-123456789
Content-type: message/rfc822

Return-path: <${f.returnPath}>
Received: from app.example.com ([192.0.2.10])
	by mx.exim.example with esmtp (Exim 4.96)
	id 1tAbCc-000122-3D
	for ${f.rcpt}; Thu, 03 Dec 2026 10:04:58 +0000
Date: Thu, 03 Dec 2026 10:04:58 +0000
From: mailwheel <noreply@example.com>
To: ${f.rcpt}
Subject: Your daily digest
Message-ID: ${f.messageId}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello there.

--1764756300-eximdsn-123456789--
`);
}

/** Exchange Online's non-delivery report: the delivery status base64-encoded, Status 5.1.10. */
export function exchangeBounce(f: BounceFill): string {
  const status = Buffer.from(
    crlf(`Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;relay.example.com
Arrival-Date: Thu, 3 Dec 2026 10:06:00 +0000

Final-Recipient: rfc822;${f.rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
`),
  )
    .toString('base64')
    .replace(/.{76}/g, '$&\r\n');
  return crlf(`From: postmaster@contoso.onmicrosoft.com
To: ${f.returnPath}
Date: Thu, 3 Dec 2026 10:06:01 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="28f2b7a1-5c4e-4c37-9d2e-b6e8b0e1c0aa"
MIME-Version: 1.0
Message-ID: ${f.reportId}
Subject: Undeliverable: Your daily digest
Auto-Submitted: auto-replied

--28f2b7a1-5c4e-4c37-9d2e-b6e8b0e1c0aa
Content-Type: text/plain; charset="us-ascii"

Your message to ${f.rcpt} couldn't be delivered.

--28f2b7a1-5c4e-4c37-9d2e-b6e8b0e1c0aa
Content-Type: message/delivery-status
Content-Transfer-Encoding: base64

${status}
--28f2b7a1-5c4e-4c37-9d2e-b6e8b0e1c0aa
Content-Type: text/rfc822-headers

Return-Path: ${f.returnPath}
From: mailwheel <noreply@example.com>
To: ${f.rcpt}
Subject: Your daily digest
Date: Thu, 3 Dec 2026 10:05:59 +0000
Message-ID: ${f.messageId}

--28f2b7a1-5c4e-4c37-9d2e-b6e8b0e1c0aa--
`);
}

/** RFC 5965 appendix B.2, "Extended Example": Original-Rcpt-To names the complainer. */
export const RFC5965_EXTENDED = crlf(`From: <arf-daemon@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: This is a test
To: <abuse@example.net>
Message-ID: <433689.81121.example@mta.mail.receiver.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <somespammer@example.net>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html
Reported-Uri: mailto:user@example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <somespammer@example.net>
Received: from mailserver.example.net (mailserver.example.net
        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;
        Tue, 08 Mar 2005 14:00:00 -0400
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
`);

/** RFC 5965 appendix B.1, "Simple Example": no Original-Rcpt-To, the original To undisclosed. */
export const RFC5965_SIMPLE = crlf(`From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

Received: from mailserver.example.net
        (mailserver.example.net [192.0.2.1])
        by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
From: <somespammer@example.net>
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
--part1_13d.2e68ed54_boundary--
`);

export interface ComplaintFill {
  /** The original envelope sender (Original-Mail-From: a VERP address). */
  returnPath: string;
  /** The complaining recipient. */
  rcpt: string;
  messageId: string;
  reportId: string;
  feedbackType?: string;
}

/**
 * Yahoo's complaint feedback loop: ARF version 0.1 with Received-Date (the pre-RFC name), the
 * original returned whole, Original-Rcpt-To without brackets.
 */
export function yahooComplaint(f: ComplaintFill): string {
  return crlf(`From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@example.com
Subject: FW: Your daily digest
MIME-Version: 1.0
Message-ID: ${f.reportId}
Date: Thu, 3 Dec 2026 11:00:00 +0000
Content-Type: multipart/report; boundary="----=_Part_1_2.3"; report-type=feedback-report

------=_Part_1_2.3
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message from example.com on Thu, 3 Dec 2026 10:58:12 +0000
------=_Part_1_2.3
Content-Type: message/feedback-report

Feedback-Type: ${f.feedbackType ?? 'abuse'}
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <${f.returnPath}>
Original-Rcpt-To: ${f.rcpt}
Received-Date: Thu, 3 Dec 2026 10:58:12 +0000
Reported-Domain: example.com
Authentication-Results: mta1001.mail.ne1.yahoo.com  from=example.com; domainkeys=neutral (no sig);  from=example.com; dkim=pass (ok)

------=_Part_1_2.3
Content-Type: message/rfc822

X-Apparently-To: ${f.rcpt}; Thu, 3 Dec 2026 10:58:12 +0000
Return-Path: <${f.returnPath}>
Received: from 192.0.2.10 (EHLO app.example.com) (192.0.2.10)
  by mta1001.mail.ne1.yahoo.com with SMTP; Thu, 03 Dec 2026 10:58:12 +0000
Date: Thu, 03 Dec 2026 10:58:10 +0000
From: mailwheel <noreply@example.com>
To: ${f.rcpt}
Subject: Your daily digest
Message-ID: ${f.messageId}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello there.
------=_Part_1_2.3--
`);
}
